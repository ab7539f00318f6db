"""Which directory and Exchange clients an operation talks to.

`live` builds ldap3/pywinrm clients from the services of the customer's virtual server and
keeps one per service in each worker process, so the LDAP connection is reused. `dryrun`
runs the same client logic against an in-memory directory and records what it would send.
Either way each call the panel makes is timed and counted by outcome (MeteredClient)."""

import hashlib
import tempfile
import threading
import time
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from servers.models import ServiceKind

from . import metrics
from .directory import (
    DirectoryClient,
    DirectoryError,
    DirectorySettings,
    DryRunDirectoryClient,
    PermanentDirectoryError,
    TransientDirectoryError,
)
from .exchange import (
    DryRunExchangeClient,
    ExchangeClient,
    ExchangeError,
    ExchangeSettings,
    TransientExchangeError,
)

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


class MeteredClient:
    """A directory or Exchange client whose calls are timed and counted by outcome
    (provisioning.metrics: panel_backend_call_duration_seconds). A call is one public
    method of the client, named as such (ensure_user, enable_mailbox ...); the names it
    computes, its settings, and the dry run's journal pass through untouched. The clients
    themselves know nothing of metrics."""

    UNMETERED = frozenset({"root_dn", "org_dn", "org_group_dn", "close", "restore",
                           "settings", "journal"})
    TRANSIENT = (TransientDirectoryError, TransientExchangeError, SoftTimeLimitExceeded)
    PERMANENT = (DirectoryError, ExchangeError)

    def __init__(self, client, service):
        self._client = client
        self._service = service

    def __repr__(self):
        return repr(self._client)

    def __getattr__(self, name):
        value = getattr(self._client, name)
        if name.startswith("_") or name in self.UNMETERED or not callable(value):
            return value

        def metered(*args, **kwargs):
            started = time.perf_counter()
            outcome = "error"
            try:
                result = value(*args, **kwargs)
                outcome = "ok"
                return result
            except self.TRANSIENT:
                outcome = "transient"
                raise
            except self.PERMANENT:
                outcome = "permanent"
                raise
            finally:
                metrics.backend_call(self._service, name, outcome,
                                     time.perf_counter() - started)
        return metered


def _cached(kind, service, build):
    """One client per service in each worker process, so connections are reused; built
    anew when the service's settings change."""
    key = (kind, "dryrun" if is_dry_run() else "live", service.pk)
    marker = service.updated_marker()
    with _lock:
        cached = _clients.get(key)
        if cached is None or cached[0] != marker:
            if cached is not None:
                getattr(cached[1], "close", lambda: None)()
            cached = _clients[key] = (marker, MeteredClient(build(), kind))
    return cached[1]


def directory_for(customer, services=None):
    service = service_for(customer, ServiceKind.ACTIVE_DIRECTORY, services)
    if service is None:
        raise PermanentDirectoryError(
            "The organization's hosting plan has no Active Directory service.")
    return directory_for_service(service)


def directory_for_service(service):
    client_class = DryRunDirectoryClient if is_dry_run() else DirectoryClient
    return _cached("directory", service, lambda: client_class(directory_settings(service)))


def exchange_settings(service):
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
    service = service_for(customer, ServiceKind.EXCHANGE, services)
    if service is None or not service.enabled:
        return None
    client_class = DryRunExchangeClient if is_dry_run() else ExchangeClient
    return _cached("exchange", service, lambda: client_class(exchange_settings(service)))
