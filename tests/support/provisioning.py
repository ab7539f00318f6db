"""What the end-to-end provisioning tests share: signing an organization up under a unique
name, adding users, and waiting for the worker to finish their operations."""

import time
import uuid

from provisioning import services
from provisioning.models import Operation
from servicplans.models import HostingPlan, ServicePlan

PASSWORD = "Directory-Pass-2026!"


def unique(prefix):
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def sign_up(reseller, name=None, domain=None):
    """An organization on the Business Premium plan; Samba keeps every earlier test's
    objects, so names and domains are unique."""
    name = name or unique("Org")
    domain = domain or f"{uuid.uuid4().hex[:10]}.example"
    org = services.sign_up_organization(
        reseller=reseller, name=name, primary_domain=domain,
        admin_username=f"admin-{uuid.uuid4().hex[:8]}", admin_password=PASSWORD,
        hosting_plan=HostingPlan.objects.get(name="Business Premium"),
        service_plans=ServicePlan.objects.filter(name__in=["Gold", "Silver"]))
    return org, domain


def add_user(org, domain, local, plan="Gold", display=None):
    return services.create_user(org, display_name=display or f"User {local}", local_part=local,
                                domain=domain, password=PASSWORD, given_name="Given",
                                surname="Surname", service_plan=ServicePlan.objects.get(name=plan))


def wait_for_operations(*operations, timeout=60):
    """Wait until the operations (default: all) are finished; return them fresh."""
    deadline = time.monotonic() + timeout
    while True:
        queryset = Operation.objects.all()
        if operations:
            queryset = queryset.filter(pk__in=[o.pk for o in operations])
        pending = queryset.exclude(state__in=["succeeded", "failed", "cancelled"])
        if not pending.exists():
            return list(queryset.order_by("pk"))
        if time.monotonic() > deadline:
            raise AssertionError("operations still pending: " + ", ".join(
                f"#{o.pk} {o.action} {o.state} ({o.last_error})" for o in pending))
        time.sleep(0.2)


def succeeded(*operations):
    """Wait for the operations and insist that every one of them succeeded."""
    done = wait_for_operations(*operations)
    assert [(o.action, o.state, o.last_error) for o in done] == [
        (o.action, "succeeded", "") for o in done]
    return done


def can_bind(directory_settings, user, password):
    """Whether the directory accepts this user's password, over LDAPS."""
    import ssl

    import ldap3

    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=directory_settings.ca_file)
    server = ldap3.Server(directory_settings.host, directory_settings.port, use_ssl=True,
                          tls=tls, get_info=ldap3.NONE)
    connection = ldap3.Connection(server, user, password)
    try:
        return connection.bind()
    finally:
        connection.unbind()
