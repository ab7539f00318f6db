"""Point a virtual server's Active Directory and Exchange services at real servers, from
the environment — e.g. the lines `python -m tests.support.samba` prints, and the WS-Management
endpoint of `python -m tests.support.wsman_server`. Passwords come from the environment so
they never appear in a process list or shell history."""

import os
from pathlib import Path
from urllib.parse import urlparse

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from servers.models import ServiceKind, VirtualServer

# What to set in the environment for each field the model's check may refuse.
REMEDIES = {
    "winrm_endpoint": "Set EXCHANGE_URL.",
    "winrm_transport": "Use an https:// EXCHANGE_URL, or set EXCHANGE_ALLOW_INSECURE=true "
                       "for a test endpoint.",
    "ldap_host": "Set DIRECTORY_URL.",
    "base_dn": "Set DIRECTORY_BASE_DN.",
    "bind_dn": "Set DIRECTORY_BIND_DN.",
}


def is_true(value):
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def checked(service):
    """The service's own check, its errors told in terms of the environment."""
    try:
        service.full_clean()
    except ValidationError as exc:
        raise CommandError(f"{service.name}: " + " ".join(
            " ".join([*messages, REMEDIES.get(field, "")]).strip()
            for field, messages in exc.message_dict.items())) from None
    return service


class Command(BaseCommand):
    help = ("Configure a virtual server's services from DIRECTORY_URL, DIRECTORY_CA_FILE, "
            "DIRECTORY_BASE_DN, DIRECTORY_BIND_DN, DIRECTORY_BIND_PASSWORD and EXCHANGE_URL, "
            "EXCHANGE_USER, EXCHANGE_PASSWORD, EXCHANGE_TRANSPORT, EXCHANGE_ALLOW_INSECURE.")

    def add_arguments(self, parser):
        parser.add_argument("--virtual-server", default="Hosted Exchange")

    @transaction.atomic
    def handle(self, *args, virtual_server, **options):
        vs = VirtualServer.objects.filter(name=virtual_server).first()
        if vs is None:
            raise CommandError(f"No virtual server named {virtual_server!r}.")
        env = os.environ
        if env.get("DIRECTORY_URL"):
            url = urlparse(env["DIRECTORY_URL"])
            service = vs.service_of_kind(ServiceKind.ACTIVE_DIRECTORY)
            service.ldap_host = url.hostname
            service.use_ssl = url.scheme == "ldaps"
            service.ldap_port = url.port or (636 if service.use_ssl else 389)
            if env.get("DIRECTORY_CA_FILE"):
                service.ca_certificate = Path(env["DIRECTORY_CA_FILE"]).read_text()
            service.base_dn = env.get("DIRECTORY_BASE_DN", service.base_dn)
            service.bind_dn = env.get("DIRECTORY_BIND_DN", service.bind_dn)
            service.bind_password = env.get("DIRECTORY_BIND_PASSWORD", service.bind_password)
            checked(service).save()
            self.stdout.write(f"{service.name}: {env['DIRECTORY_URL']}")
        if env.get("EXCHANGE_URL"):
            service = vs.service_of_kind(ServiceKind.EXCHANGE)
            service.winrm_endpoint = env["EXCHANGE_URL"]
            service.winrm_transport = env.get("EXCHANGE_TRANSPORT", "basic")
            service.winrm_allow_insecure = is_true(env.get("EXCHANGE_ALLOW_INSECURE"))
            service.exchange_username = env.get("EXCHANGE_USER", service.exchange_username)
            service.exchange_password = env.get("EXCHANGE_PASSWORD", service.exchange_password)
            checked(service).save()
            self.stdout.write(f"{service.name}: {env['EXCHANGE_URL']}")
