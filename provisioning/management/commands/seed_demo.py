"""Demo data for a first look at the panel. Running it again changes nothing."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from provisioning import constants as c
from provisioning import services
from provisioning.models import Account, Customer, HostingSpace, Role
from servers.models import Server, Service, ServiceKind, VirtualServer, VirtualServerService
from servicplans.models import (
    FeatureType,
    HostingPlan,
    HostingPlanQuota,
    PlanCategory,
    PlanFeature,
    ServicePlan,
)

DEMO_PASSWORD = "Demo-Panel-2026!"

HOSTING_PLANS = {
    # name: (setup, recurring, {quota: limit or None for unlimited})
    "Reseller Standard": ("0.00", "49.00", {"organizations": 100, "users": None,
                                            "mailboxes": None, "domains": None,
                                            "mailbox_disk_mb": None, "security_groups": None,
                                            "mail_contacts": None}),
    "Business Basic": ("25.00", "4.00", {"organizations": 0, "users": 25, "mailboxes": 25,
                                         "domains": 3, "mailbox_disk_mb": 51200,
                                         "security_groups": 5, "mail_contacts": 50}),
    "Business Premium": ("0.00", "9.00", {"organizations": 0, "users": 250, "mailboxes": 250,
                                          "domains": None, "mailbox_disk_mb": None,
                                          "security_groups": 50, "mail_contacts": 500}),
}

# Values are the native attribute's own values (disablePOP=false means POP is on).
SERVICE_PLANS = {
    "Gold": ("Business Plans", {"MailboxSize": "10240", "OWA": "false", "POP": "false",
                                "IMAP": "false", "MAPI": "false", "ActiveSync": "0",
                                "OwaSegment": "-1", "OutlookClient": "true"}),
    "Silver": ("Business Plans", {"MailboxSize": "2048", "OWA": "false", "POP": "false",
                                  "IMAP": "true", "MAPI": "true", "ActiveSync": "7",
                                  "OwaSegment": "1", "OutlookClient": "true"}),
    "Consumer": ("Consumer Plans", {"MailboxSize": "1024", "OWA": "false", "POP": "false",
                                    "IMAP": "false", "MAPI": "true", "ActiveSync": "7",
                                    "OwaSegment": "1", "OutlookClient": "false"}),
}

DEMO_USERS = [
    ("Megan Bowen", "Megan", "Bowen", "megan", "Gold"),
    ("Alex Wilber", "Alex", "Wilber", "alex", "Silver"),
    ("Zoë Ærøskøbing", "Zoë", "Ærøskøbing", "zoe", "Silver"),
]


class Command(BaseCommand):
    help = "Create demo servers, plans, a reseller and an organization (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options):
        User = get_user_model()

        dc, _ = Server.objects.get_or_create(name="dc01", defaults={
            "hostname": "dc01.hosting.test", "description": "Domain controller"})
        exch, _ = Server.objects.get_or_create(name="exch01", defaults={
            "hostname": "exch01.hosting.test", "description": "Exchange mailbox server"})
        ad, _ = Service.objects.get_or_create(name="Active Directory (dc01)", defaults={
            "server": dc, "kind": ServiceKind.ACTIVE_DIRECTORY, "ldap_host": dc.hostname,
            "base_dn": "DC=hosting,DC=test", "bind_dn": "CN=panel,CN=Users,DC=hosting,DC=test",
            "bind_password": "change-me"})
        ex, _ = Service.objects.get_or_create(name="Exchange (exch01)", defaults={
            "server": exch, "kind": ServiceKind.EXCHANGE,
            "winrm_endpoint": "https://exch01.hosting.test:5986/wsman",
            "exchange_username": "HOSTING\\panel", "exchange_password": "change-me",
            "default_database": "DB01"})
        vs, _ = VirtualServer.objects.get_or_create(
            name="Hosted Exchange", defaults={"description": "dc01 + exch01"})
        for service in (ad, ex):
            VirtualServerService.objects.get_or_create(virtual_server=vs, service=service)

        plans = {}
        for name, (setup, recurring, limits) in HOSTING_PLANS.items():
            plan, _ = HostingPlan.objects.get_or_create(name=name, defaults={
                "virtual_server": vs, "setup_price": setup, "recurring_price": recurring})
            for quota, limit in limits.items():
                HostingPlanQuota.objects.get_or_create(
                    hosting_plan=plan, quota=quota,
                    defaults={"limit": limit, "unlimited": limit is None})
            plans[name] = plan

        features = {f.name: f for f in FeatureType.objects.all()}
        service_plans = {}
        for name, (category, values) in SERVICE_PLANS.items():
            category, _ = PlanCategory.objects.get_or_create(name=category)
            plan, _ = ServicePlan.objects.get_or_create(name=name,
                                                        defaults={"category": category})
            for feature, value in values.items():
                PlanFeature.objects.get_or_create(service_plan=plan,
                                                  feature_type=features[feature],
                                                  defaults={"value": value})
            service_plans[name] = plan

        provider = self._login(User, "provider", superuser=True)
        Account.objects.get_or_create(user=provider, defaults={"role": Role.PROVIDER_STAFF})

        reseller, created = Customer.objects.get_or_create(
            name="Northwind Hosting", customer_type_id=c.RESELLER_ORGANIZATION)
        if created:
            HostingSpace.objects.create(customer=reseller, hosting_plan=plans["Reseller Standard"],
                                        name="Northwind Hosting — Reseller Standard")
            services.record_event(reseller, c.CREATED, provider, name=reseller.name)
        reseller_login = self._login(User, "reseller")
        Account.objects.get_or_create(user=reseller_login,
                                      defaults={"customer": reseller,
                                                "role": Role.RESELLER_ADMIN})

        organization = Customer.objects.organizations().filter(name="Contoso").first()
        if organization is None:
            organization = services.sign_up_organization(
                reseller=reseller, name="Contoso", primary_domain="contoso.example",
                admin_username="contoso-admin", admin_password=DEMO_PASSWORD,
                admin_email="admin@contoso.example", hosting_plan=plans["Business Basic"],
                service_plans=[service_plans["Gold"], service_plans["Silver"]],
                actor=reseller_login)
        peer = self._login(User, "contoso-helpdesk")
        Account.objects.get_or_create(user=peer, defaults={"customer": organization,
                                                           "role": Role.PEER_HELPDESK})

        for display, given, surname, local, plan in DEMO_USERS:
            if not Customer.objects.filter(upn=f"{local}@contoso.example").exists():
                services.create_user(organization, display_name=display, given_name=given,
                                     surname=surname, local_part=local,
                                     domain="contoso.example", password=DEMO_PASSWORD,
                                     service_plan=service_plans[plan])

        self.stdout.write(self.style.SUCCESS("Demo data is ready. Logins (password "
                                             f"{DEMO_PASSWORD}):"))
        for login, role in (("provider", "provider staff, Django admin at /admin/"),
                            ("reseller", "reseller administrator of Northwind Hosting"),
                            ("contoso-admin", "primary administrator of Contoso"),
                            ("contoso-helpdesk", "peer account (helpdesk) of Contoso")):
            self.stdout.write(f"  {login:<18} {role}")

    def _login(self, User, username, superuser=False):
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User(username=username, email=f"{username}@panel.example",
                        is_staff=superuser, is_superuser=superuser)
            user.set_password(DEMO_PASSWORD)
            user.save()
        return user
