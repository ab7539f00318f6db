"""Which directory and Exchange clients an operation talks to.

`live` builds ldap3/pywinrm clients from the services of the customer's virtual server and
keeps one per service in each worker process, so the LDAP connection is reused. `dryrun`
runs the same client logic against an in-memory directory and records what it would send."""

import hashlib
import tempfile
import threading
from pathlib import Path

from django.conf import settings

from servers.models import ServiceKind

from .directory import DirectoryClient, DirectorySettings, DryRunDirectoryClient

_clients = {}
_lock = threading.Lock()


def is_dry_run():
    return settings.PROVISIONING_BACKEND == "dryrun"


def services_of(customer):
    """{kind: Service} of the virtual server behind the organization's hosting space, in
    one query."""
    from servers.models import Service

    organization = customer.organization or customer
    space = organization.hosting_spaces.order_by("pk").values_list(
        "hosting_plan__virtual_server_id", flat=True).first()
    if space is None:
        return {}
    return {service.kind: service for service in Service.objects.filter(
        virtual_servers__id=space).select_related("server")}


def service_for(customer, kind, services=None):
    services = services_of(customer) if services is None else services
    return services.get(kind)


def ca_file_for(pem):
    """ldap3 wants a CA file; write the stored PEM once, named by its hash."""
    if not pem:
        return None
    path = Path(tempfile.gettempdir()) / f"panel-ca-{hashlib.sha256(pem.encode()).hexdigest()}.pem"
    if not path.exists():
        path.write_text(pem)
    return str(path)


def directory_settings(service):
    return DirectorySettings(
        host=service.ldap_host, port=service.ldap_port, use_ssl=service.use_ssl,
        start_tls=not service.use_ssl, verify_ca=service.verify_ca,
        ca_file=ca_file_for(service.ca_certificate), base_dn=service.base_dn,
        root_ou=service.root_ou, bind_dn=service.bind_dn,
        bind_password=service.bind_password or "")


def directory_for(customer, services=None):
    service = service_for(customer, ServiceKind.ACTIVE_DIRECTORY, services)
    if service is None:
        from .directory import PermanentDirectoryError

        raise PermanentDirectoryError(
            "The organization's hosting plan has no Active Directory service.")
    return directory_for_service(service)


def directory_for_service(service):
    key = ("dryrun" if is_dry_run() else "live", service.pk, service.updated_marker())
    with _lock:
        client = _clients.get(key)
        if client is None:
            for old in [k for k in _clients if k[:2] == key[:2]]:
                _clients.pop(old).close()
            cls = DryRunDirectoryClient if is_dry_run() else DirectoryClient
            client = _clients[key] = cls(directory_settings(service))
    return client


def reset():
    with _lock:
        for client in _clients.values():
            getattr(client, "close", lambda: None)()
        _clients.clear()


def exchange_settings(service):
    from .exchange import ExchangeSettings

    insecure = service.winrm_allow_insecure
    return ExchangeSettings(
        endpoint=service.winrm_endpoint, transport=service.winrm_transport,
        username=service.exchange_username, password=service.exchange_password or "",
        verify_tls=service.winrm_verify_tls, default_database=service.default_database,
        allow_insecure=insecure, message_encryption="never" if insecure else "auto",
        read_timeout=settings.EXCHANGE_READ_TIMEOUT,
        operation_timeout=settings.EXCHANGE_OPERATION_TIMEOUT)


def exchange_for(customer, services=None):
    """The organization's Exchange client, or None when its plan includes no Exchange."""
    from .exchange import DryRunExchangeClient, ExchangeClient

    service = service_for(customer, ServiceKind.EXCHANGE, services)
    if service is None or not service.enabled:
        return None
    key = ("exchange", "dryrun" if is_dry_run() else "live", service.pk,
           service.updated_marker())
    with _lock:
        client = _clients.get(key)
        if client is None:
            for old in [k for k in _clients if k[:3] == key[:3]]:
                _clients.pop(old)
            config = exchange_settings(service)
            client = DryRunExchangeClient(config) if is_dry_run() else ExchangeClient(config)
            _clients[key] = client
    return client
