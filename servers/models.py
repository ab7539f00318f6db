"""The provider's infrastructure: servers, the services they run, and virtual servers
that combine services from several servers (the provisioning concept's first chapter)."""

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from encrypted_fields.fields import EncryptedCharField

DEFAULT_ROOT_OU = "Microsoft Exchange Hosted Organizations"


class Server(models.Model):
    name = models.CharField(max_length=100, unique=True)
    hostname = models.CharField(max_length=255, help_text="Fully qualified host name.")
    description = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class ServiceKind(models.TextChoices):
    ACTIVE_DIRECTORY = "active_directory", "Active Directory"
    EXCHANGE = "exchange", "Exchange"


class WinRMTransport(models.TextChoices):
    NTLM = "ntlm", "NTLM"
    KERBEROS = "kerberos", "Kerberos"
    BASIC = "basic", "Basic over HTTPS"


class ServiceQuerySet(models.QuerySet):
    def record_contact(self, at=None, every_seconds=10):
        """Note a successful LDAP bind or WinRM call now. An UPDATE, not a save: the
        settings' `updated` marker (and so the workers' cached clients) stays as it is; and
        a time written less than `every_seconds` ago is left alone, so busy workers do not
        all queue on one row."""
        at = at or timezone.now()
        return self.filter(Q(last_contact=None) | Q(
            last_contact__lt=at - timedelta(seconds=every_seconds))).update(last_contact=at)


class Service(models.Model):
    """A provider (Active Directory or Exchange) on a server, with its settings.

    Secrets are encrypted at rest and the admin never shows them back."""

    server = models.ForeignKey(Server, on_delete=models.PROTECT, related_name="services")
    kind = models.CharField(max_length=32, choices=ServiceKind.choices)
    name = models.CharField(max_length=100, unique=True)
    enabled = models.BooleanField(default=True)

    # Active Directory
    ldap_host = models.CharField("domain controller", max_length=255, blank=True)
    ldap_port = models.PositiveIntegerField("port", default=636)
    use_ssl = models.BooleanField("LDAPS", default=True,
                                  help_text="LDAPS on the port above; otherwise StartTLS.")
    verify_ca = models.BooleanField("verify the CA", default=True)
    ca_certificate = models.TextField("CA certificate (PEM)", blank=True)
    base_dn = models.CharField("base DN", max_length=255, blank=True)
    root_ou = models.CharField("root OU", max_length=64, default=DEFAULT_ROOT_OU, blank=True)
    bind_dn = models.CharField("bind account", max_length=255, blank=True)
    bind_password = EncryptedCharField(max_length=255, blank=True, null=True)

    # Exchange
    winrm_endpoint = models.URLField("WinRM endpoint", blank=True,
                                     help_text="e.g. https://exch01.example.net:5986/wsman")
    winrm_transport = models.CharField("transport", max_length=16,
                                       choices=WinRMTransport.choices, default=WinRMTransport.NTLM)
    winrm_verify_tls = models.BooleanField("verify the certificate", default=True)
    winrm_allow_insecure = models.BooleanField(
        "allow unencrypted WinRM", default=False,
        help_text="Only for a test endpoint: lets Basic or NTLM run over plain HTTP.")
    exchange_username = models.CharField("account", max_length=255, blank=True)
    exchange_password = EncryptedCharField(max_length=255, blank=True, null=True)
    default_database = models.CharField("default mailbox database", max_length=255, blank=True)
    updated = models.DateTimeField(auto_now=True)
    last_contact = models.DateTimeField(
        "last successful contact", null=True, blank=True, editable=False,
        help_text="The last successful LDAP bind or WinRM call of a worker or a connection "
                  "test (the dry-run backend contacts nothing).")

    objects = ServiceQuerySet.as_manager()

    class Meta:
        ordering = ["server__name", "name"]

    def __str__(self):
        return f"{self.name} ({self.get_kind_display()} on {self.server})"

    def updated_marker(self):
        """Changes when the settings change, so cached clients are rebuilt."""
        return self.updated.isoformat() if self.updated else ""

    def clean(self):
        errors = {}
        if self.kind == ServiceKind.ACTIVE_DIRECTORY:
            for field in ("ldap_host", "base_dn", "bind_dn"):
                if not getattr(self, field):
                    errors[field] = "Required for an Active Directory service."
            if not self.root_ou:
                self.root_ou = DEFAULT_ROOT_OU
        elif self.kind == ServiceKind.EXCHANGE:
            if not self.winrm_endpoint:
                errors["winrm_endpoint"] = "Required for an Exchange service."
            elif (self.winrm_transport == WinRMTransport.BASIC
                  and not self.winrm_endpoint.lower().startswith("https://")
                  and not self.winrm_allow_insecure):
                # The same rule as provisioning.exchange.ExchangeSettings: Basic over plain
                # HTTP sends the password in the clear, so only a test endpoint may ask.
                errors["winrm_transport"] = (
                    "Basic authentication is only allowed over HTTPS, unless "
                    f"“{self._meta.get_field('winrm_allow_insecure').verbose_name}” is set "
                    "for a test endpoint.")
        if errors:
            raise ValidationError(errors)


class VirtualServer(models.Model):
    """Services from several servers combined; hosting plans are built on it."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    services = models.ManyToManyField(Service, through="VirtualServerService",
                                      related_name="virtual_servers")

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def service_of_kind(self, kind):
        link = self.service_links.select_related("service__server").filter(kind=kind).first()
        return link.service if link else None


class VirtualServerService(models.Model):
    virtual_server = models.ForeignKey(VirtualServer, on_delete=models.CASCADE,
                                       related_name="service_links")
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="+")
    # Copied from the service so the database itself allows one service of each kind.
    kind = models.CharField(max_length=32, choices=ServiceKind.choices, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["virtual_server", "kind"],
                                    name="one_service_of_each_kind"),
        ]

    def __str__(self):
        return f"{self.virtual_server}: {self.service}"

    def save(self, *args, **kwargs):
        self.kind = self.service.kind
        super().save(*args, **kwargs)

    def clean(self):
        if self.service_id is None:
            return
        self.kind = self.service.kind
        if self.virtual_server_id and VirtualServerService.objects.filter(
            virtual_server_id=self.virtual_server_id, kind=self.kind
        ).exclude(pk=self.pk).exists():
            raise ValidationError(
                {"service": f"This virtual server already has a {self.service.get_kind_display()}"
                            " service."})
