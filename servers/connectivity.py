"""The admin's "test connection": an LDAPS bind, or a WinRM identify, reported in plain
words. It never raises, and never echoes a secret. A success is the service's last
successful contact."""

import logging

from .models import Service, ServiceKind

log = logging.getLogger(__name__)


def test_connection(service):
    try:
        if service.kind == ServiceKind.ACTIVE_DIRECTORY:
            from provisioning.backends import directory_settings
            from provisioning.directory import DirectoryClient

            client = DirectoryClient(directory_settings(service))
            try:
                who = client.verify_bind()
            finally:
                client.close()
            Service.objects.filter(pk=service.pk).record_contact(every_seconds=0)
            return True, f"Bound to {service.ldap_host} as {who}."
        from provisioning.backends import exchange_settings
        from provisioning.exchange import ExchangeClient

        vendor = ExchangeClient(exchange_settings(service)).identify()
        Service.objects.filter(pk=service.pk).record_contact(every_seconds=0)
        return True, f"WinRM endpoint answered: {vendor}."
    except Exception as exc:  # noqa: BLE001 - the point is to report any failure
        message = getattr(exc, "user_message", None) or str(exc) or exc.__class__.__name__
        log.info("connection test of service %s failed: %s", service.pk, message)
        return False, f"Connection failed: {message}"
