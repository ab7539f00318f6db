"""A throwaway Samba Active Directory domain controller for tests and development.

Samba's AD DC behaves like Windows for everything the panel does over LDAP
(OUs, uPNSuffixes, objectGUID, ``<GUID=...>`` DNs, unicodePwd over LDAPS,
userAccountControl), so the directory client is tested against the real thing.

Standalone, for running the panel against a real directory::

    python -m tests.support.samba --dir /tmp/samba-dc

LDAP listens on the fixed ports 389/636, which needs root, and only one such
DC can run on a machine at a time.
"""

from __future__ import annotations

import argparse
import atexit
import datetime
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REALM = "HOSTING.TEST"
DOMAIN = "HOSTING"
HOST_NAME = "dc1"
BASE_DN = "DC=hosting,DC=test"
SCHEMA_LDIF = Path(__file__).with_name("exchange_schema.ldif")
DEBIAN_PACKAGES = "samba samba-ad-dc ldb-tools"
SECOND_RUN_MARKER = "# --- second run ---"


class SambaUnavailableError(RuntimeError):
    """Samba is not installed or cannot run here."""


class SambaDC:
    """Provision, start, stop and restart a Samba AD DC living in one folder.

    The data survives ``stop()``/``start()``, so tests can simulate an outage in
    the middle of an operation and bring the same directory back.
    """

    host = "127.0.0.1"
    ldap_port = 389
    ldaps_port = 636
    realm = REALM
    domain = DOMAIN
    base_dn = BASE_DN
    admin_dn = f"CN=Administrator,CN=Users,{BASE_DN}"
    admin_user = f"{DOMAIN}\\Administrator"

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        admin_password: str | None = None,
        start_timeout: float = 60,
    ) -> None:
        self._owns_directory = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="samba-dc-")).resolve()
        self.start_timeout = start_timeout
        self._password_file = self.directory / "admin-password"
        self._explicit_password = admin_password
        self._process: subprocess.Popen[bytes] | None = None
        self._output = None
        atexit.register(self.stop)

    # -- paths and settings -------------------------------------------------

    @property
    def smb_conf(self) -> Path:
        return self.directory / "etc" / "smb.conf"

    @property
    def sam_ldb(self) -> Path:
        return self.directory / "private" / "sam.ldb"

    @property
    def tls_dir(self) -> Path:
        return self.directory / "private" / "tls"

    @property
    def ca_file(self) -> str:
        return str(self.tls_dir / "ca.pem")

    @property
    def log_file(self) -> Path:
        return self.directory / "samba.out"

    @property
    def admin_password(self) -> str:
        if self._explicit_password:
            return self._explicit_password
        if self._password_file.exists():
            return self._password_file.read_text().strip()
        # Three character classes so Samba's default complexity rule accepts it.
        password = f"Adm-{secrets.token_urlsafe(12)}-9z"
        self._store_password(password)
        return password

    def _store_password(self, password: str) -> None:
        # Kept beside the data so that a reused folder (--dir) can be bound to again.
        self._password_file.parent.mkdir(parents=True, exist_ok=True)
        self._password_file.touch(mode=0o600)
        self._password_file.write_text(password)

    def connection_settings(self) -> dict[str, object]:
        return {
            "host": self.host,
            "port": self.ldaps_port,
            "use_ssl": True,
            "ca_file": self.ca_file,
            "base_dn": self.base_dn,
            "bind_dn": self.admin_dn,
            "bind_password": self.admin_password,
        }

    @property
    def is_provisioned(self) -> bool:
        return self.sam_ldb.exists() and self.smb_conf.exists()

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- lifecycle ----------------------------------------------------------

    def provision(self) -> None:
        """Create the domain once; a folder that already holds one is reused."""
        if self.is_provisioned:
            return
        _require_samba()
        self.directory.mkdir(parents=True, exist_ok=True)
        d = self.directory
        options = {
            "server services": "ldap",
            # Keep every runtime path inside the folder so that nothing leaks into
            # /run or /var and two folders never share state.
            "pid directory": d / "run",
            "ncalrpc dir": d / "run" / "ncalrpc",
            "winbindd socket directory": d / "run" / "winbindd",
            "ntp signd socket directory": d / "run" / "ntp_signd",
            "log file": d / "log" / "samba.log",
            "interfaces": "lo",
            "bind interfaces only": "yes",
        }
        command = [
            "samba-tool", "domain", "provision",
            f"--targetdir={d}",
            f"--realm={REALM}",
            f"--domain={DOMAIN}",
            f"--host-name={HOST_NAME}",
            "--server-role=dc",
            "--dns-backend=NONE",
            f"--adminpass={self.admin_password}",
            *(f"--option={key}={value}" for key, value in options.items()),
        ]
        for sub in ("run", "log"):
            (d / sub).mkdir(exist_ok=True)
        if self._explicit_password:
            self._store_password(self._explicit_password)
        _run(command, what="samba-tool domain provision", secret=self.admin_password)
        self._write_tls_certificates()
        self._extend_schema()

    def start(self) -> None:
        if self.is_running:
            return
        _require_samba()
        self.provision()
        if _port_open(self.host, self.ldaps_port):
            raise SambaUnavailableError(
                f"Port {self.ldaps_port} is already in use: another directory server (maybe a "
                "Samba DC from an earlier run) is listening. Stop it first."
            )
        # Stays open as long as samba runs; stop() closes it.
        self._output = open(self.log_file, "ab")  # noqa: SIM115
        self._process = subprocess.Popen(
            ["samba", "-s", str(self.smb_conf), "-F", "--no-process-group", "--debug-stdout"],
            stdout=self._output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Its own process group, so stop() reaches the pre-forked workers too.
            start_new_session=True,
        )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(timeout=10)
        if process is not None:
            # The workers may outlive the root process by a moment; the next start
            # needs the ports free.
            _signal_group(process, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while _port_open(self.host, self.ldaps_port) and time.monotonic() < deadline:
                time.sleep(0.05)
        if self._output is not None:
            self._output.close()
            self._output = None

    def signal(self, sig: signal.Signals) -> None:
        """Send a signal to every Samba process (SIGSTOP freezes the DC: connections hang
        instead of being refused, as with a server that stopped answering)."""
        if self._process is not None:
            _signal_group(self._process, sig)

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        """Stop and, if the folder was a temporary one, delete it."""
        self.stop()
        if self._owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> SambaDC:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.destroy()

    # -- internals ----------------------------------------------------------

    def _wait_until_ready(self) -> None:
        import ldap3

        deadline = time.monotonic() + self.start_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise SambaUnavailableError(
                    f"samba exited during start-up:\n{self._output_tail()}"
                )
            if _port_open(self.host, self.ldaps_port):
                try:
                    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=self.ca_file)
                    server = ldap3.Server(
                        self.host, self.ldaps_port, use_ssl=True, tls=tls,
                        get_info=ldap3.NONE, connect_timeout=2,
                    )
                    connection = ldap3.Connection(
                        server, self.admin_dn, self.admin_password,
                        receive_timeout=5, raise_exceptions=True,
                    )
                    connection.bind()
                    connection.unbind()
                    return
                except Exception as exc:  # noqa: BLE001 - retried until the deadline
                    last_error = exc
            time.sleep(0.2)
        raise SambaUnavailableError(
            f"Samba did not accept an LDAPS bind within {self.start_timeout:.0f} s "
            f"(last error: {last_error!r}):\n{self._output_tail()}"
        )

    def _output_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _write_tls_certificates(self) -> None:
        """Issue our own CA and server certificate before Samba's first start.

        Samba would generate a CA itself, but its server certificate names only
        ``dc1.hosting.test`` (no subjectAltName), so a client connecting to
        127.0.0.1 could only skip hostname checking. Ours names 127.0.0.1,
        localhost and the DC's FQDN; Samba uses existing files as they are.
        ::1 is left out on purpose: tests connect there to see a name mismatch.
        """
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        now = datetime.datetime.now(datetime.UTC)
        validity = (now - datetime.timedelta(days=1), now + datetime.timedelta(days=3650))
        fqdn = f"{HOST_NAME}.{REALM.lower()}"

        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Samba test CA")])
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(validity[0])
            .not_valid_after(validity[1])
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )

        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, fqdn)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(validity[0])
            .not_valid_after(validity[1])
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.SubjectAlternativeName([
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.DNSName("localhost"),
                    x509.DNSName(fqdn),
                ]),
                critical=False,
            )
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )

        self.tls_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        pem = serialization.Encoding.PEM
        (self.tls_dir / "ca.pem").write_bytes(ca_cert.public_bytes(pem))
        (self.tls_dir / "cert.pem").write_bytes(cert.public_bytes(pem))
        key_path = self.tls_dir / "key.pem"
        # Samba refuses a key file that others can read.
        key_path.touch(mode=0o600)
        key_path.write_bytes(
            key.private_bytes(
                pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )

    def _extend_schema(self) -> None:
        schema_dn = f"CN=Schema,CN=Configuration,{BASE_DN}"
        text = SCHEMA_LDIF.read_text().replace("${SCHEMA_DN}", schema_dn)
        for number, part in enumerate(text.split(SECOND_RUN_MARKER), start=1):
            ldif = self.directory / f"exchange_schema.{number}.ldif"
            ldif.write_text(part)
            _run(
                [
                    "ldbmodify", "-H", str(self.sam_ldb),
                    "--option=dsdb:schema update allowed=true", str(ldif),
                ],
                what=f"ldbmodify (Exchange schema, run {number})",
            )


def _require_samba() -> None:
    missing = [tool for tool in ("samba-tool", "samba", "ldbmodify") if not _which(tool)]
    if missing:
        raise SambaUnavailableError(
            f"{', '.join(missing)} not found: install the Debian packages {DEBIAN_PACKAGES} "
            f"(apt-get install {DEBIAN_PACKAGES}), or deselect these tests with -m 'not samba'."
        )
    if os.geteuid() != 0:
        raise SambaUnavailableError(
            "A Samba DC listens on ports 389/636 and must run as root."
        )


def _which(tool: str) -> str | None:
    # samba lives in /usr/sbin, which is not on every user's PATH.
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")


def _run(command: list[str], *, what: str, secret: str | None = None) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-4000:]
        if secret:
            output = output.replace(secret, "********")
        raise SambaUnavailableError(f"{what} failed (exit {result.returncode}):\n{output}")


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.samba",
        description="Run a Samba AD DC for developing the panel against a real directory.",
    )
    parser.add_argument(
        "--dir",
        help="folder holding the DC; reused if already provisioned (default: a temporary "
        "folder deleted on exit)",
    )
    parser.add_argument("--admin-password", help="Administrator password for a new DC")
    args = parser.parse_args(argv)

    # A plain `kill` or a supervisor's SIGTERM must not orphan samba.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    dc = SambaDC(args.dir, admin_password=args.admin_password)
    started = time.monotonic()
    try:
        dc.start()
    except SambaUnavailableError as exc:
        print(exc, file=sys.stderr)
        return 1
    settings = dc.connection_settings()
    print(f"Samba AD DC ready in {time.monotonic() - started:.1f} s, data in {dc.directory}")
    for key, value in settings.items():
        print(f"  {key:14} {value}")
    print(f"  {'bind (NT form)':14} {dc.admin_user}")
    print("Environment for the panel:")
    print(f"  DIRECTORY_URL=ldaps://{dc.host}:{dc.ldaps_port}")
    print(f"  DIRECTORY_CA_FILE={dc.ca_file}")
    print(f"  DIRECTORY_BASE_DN={dc.base_dn}")
    print(f"  DIRECTORY_BIND_DN={dc.admin_dn}")
    print(f"  DIRECTORY_BIND_PASSWORD={dc.admin_password}")
    print("Ctrl-C stops it.", flush=True)
    try:
        while dc.is_running:
            time.sleep(1)
        print(f"samba exited:\n{dc._output_tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        if args.dir:
            dc.stop()
        else:
            dc.destroy()


if __name__ == "__main__":
    sys.exit(main())
