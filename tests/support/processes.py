"""The panel's other processes, as a provider runs them, for the live reliability scenario:
a Redis server of its own (so it can be restarted without touching anyone else's), Celery
beat, and the panel under gunicorn."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port, timeout=30, process=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        with socket.socket() as probe:
            probe.settimeout(0.2)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


class Process:
    """A child in its own process group, its output in a log file."""

    def __init__(self, name):
        self.folder = Path(tempfile.mkdtemp(prefix=f"panel-{name}-"))
        self.log = self.folder / f"{name}.log"
        self.process = None

    @property
    def is_running(self):
        return self.process is not None and self.process.poll() is None

    def _spawn(self, command, env=None):
        output = open(self.log, "ab")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def tail(self, lines=40):
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def remove(self):
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class RedisServer(Process):
    """redis-server without persistence, as the panel's broker: a restart loses every
    message, the worst case for the journal."""

    def __init__(self):
        super().__init__("redis")
        self.port = free_port()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self._spawn(["redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
                     "--save", "", "--appendonly", "no", "--dir", str(self.folder)])
        wait_for_port(self.port, process=self.process)
        return self

    def restart(self, down_for):
        self.stop(signal.SIGKILL)
        time.sleep(down_for)
        self.start()


class Beat(Process):
    def __init__(self, env):
        super().__init__("beat")
        self.env = {**os.environ, **env}

    def start(self):
        self._spawn([sys.executable, "-m", "celery", "-A", "panel", "beat", "--loglevel",
                     "INFO", "--schedule", str(self.folder / "schedule")], self.env)
        return self


class Gunicorn(Process):
    def __init__(self, env, workers=2):
        super().__init__("gunicorn")
        self.env = {**os.environ, **env}
        self.port = free_port()
        self.workers = workers

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self._spawn([sys.executable, "-m", "gunicorn", "panel.wsgi", "--bind",
                     f"127.0.0.1:{self.port}", "--workers", str(self.workers),
                     "--timeout", "60", "--access-logfile", "-"], self.env)
        wait_for_port(self.port, process=self.process)
        return self
