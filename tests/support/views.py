"""Helpers for the panel's view tests: logins per role, a second tenant to attack, and the
panel's URL patterns read from the resolver (so a new page is covered without editing a
list)."""

import re
import secrets

from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver

from provisioning import services
from provisioning.models import Account, Customer, HostingSpace, Operation, Role
from servicplans.models import HostingPlan, ServicePlan

PASSWORD = "Demo-Panel-2026!"
NEW_PASSWORD = "Fresh-Password-4711"

# The URL kwargs of the panel and the object each one names.
ID_KWARGS = ("org_id", "user_id", "account_id", "operation_id", "batch")


def make_login(username, **extra):
    user = get_user_model().objects.create_user(username=username, password=PASSWORD,
                                                email=f"{username}@panel.example", **extra)
    return user


def make_peer(organization, username, role):
    user = make_login(username)
    Account.objects.create(user=user, customer=organization, role=role)
    return user


def make_other_tenant():
    """Litware Hosting (reseller) > Fabrikam (organization) > one user, a peer and a failed
    operation."""
    provider = get_user_model().objects.get(username="provider")
    litware = Customer.objects.create(name="Litware Hosting",
                                      customer_type_id="ResellerOrganization")
    HostingSpace.objects.create(customer=litware,
                                hosting_plan=HostingPlan.objects.get(name="Reseller Standard"),
                                name="Litware — Reseller Standard")
    litware_admin = make_login("litware-reseller")
    Account.objects.create(user=litware_admin, customer=litware, role=Role.RESELLER_ADMIN)
    fabrikam = services.sign_up_organization(
        reseller=litware, name="Fabrikam", primary_domain="fabrikam.example",
        admin_username="fabrikam-admin", admin_password=PASSWORD,
        hosting_plan=HostingPlan.objects.get(name="Business Basic"),
        service_plans=ServicePlan.objects.filter(name="Gold"), actor=provider)
    user = services.create_user(fabrikam, display_name="Fabrikam User", local_part="pat",
                                domain="fabrikam.example", password=PASSWORD,
                                service_plan=ServicePlan.objects.get(name="Gold"))
    peer = make_peer(fabrikam, "fabrikam-helpdesk", Role.PEER_HELPDESK)
    operation = Operation.objects.filter(customer=user).first()
    Operation.objects.filter(pk=operation.pk).update(state="failed", last_error="boom")
    return {"reseller": litware, "organization": fabrikam, "user": user,
            "account": peer.account, "operation": operation}


def panel_patterns(resolver=None, prefix=""):
    """(name, route) of every named panel URL, the provider's /admin/ left out."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            if route.startswith("admin/"):
                continue
            yield from panel_patterns(entry, route)
        elif isinstance(entry, URLPattern) and entry.name:
            yield entry.name, route


def route_kwargs(route):
    return re.findall(r"<(?:\w+:)?(\w+)>", route)


def foreign_kwargs(route, own, foreign):
    """kwargs for `route`: every id from `foreign`, so each one must fail on its own."""
    values = {"org_id": foreign["organization"].pk, "user_id": foreign["user"].pk,
              "account_id": foreign["account"].pk, "operation_id": foreign["operation"].pk,
              "batch": secrets.token_hex(16)}
    return {name: values[name] for name in route_kwargs(route)}


def mixed_kwargs(route, own_org, foreign):
    """The caller's own organization with one foreign object id."""
    kwargs = foreign_kwargs(route, None, foreign)
    if "org_id" in kwargs:
        kwargs["org_id"] = own_org.pk
    return kwargs
