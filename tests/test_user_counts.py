"""The users, mailboxes and mailbox disk quotas read counts the database keeps
(provisioning.models.UserCount, kept by triggers): they must equal the rows whichever way the
rows change, and reading them must not count the users (issue #10)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from provisioning import quotas, services
from provisioning.models import Customer, UserCount
from servicplans.models import QuotaName, ServicePlan

PASSWORD = "Strong-Password-104!"


def agree():
    assert quotas.kept_user_counts() == quotas.counted_users()


def test_the_counts_follow_every_way_a_user_changes(demo, other_tenant):
    gold, silver = ServicePlan.objects.get(name="Gold"), ServicePlan.objects.get(name="Silver")
    agree()
    before = quotas.kept_user_counts()
    user = services.create_user(demo, display_name="Count Me", local_part="count.me",
                                domain="contoso.example", password=PASSWORD,
                                service_plan=gold)
    services.create_user(demo, display_name="No Mailbox", local_part="no.mailbox",
                         domain="contoso.example", password=PASSWORD)
    agree()
    assert quotas.kept_user_counts()[(demo.pk, gold.pk)] == before.get((demo.pk, gold.pk),
                                                                      0) + 1
    services.change_plan(user, silver)
    agree()
    services.set_enabled(user, False)  # suspended users still count
    agree()
    services.delete_customer(user)
    agree()
    # Paths that bypass the services: the admin's form save, bulk updates, queryset delete.
    megan = demo.children.get(upn="megan@contoso.example")
    megan.service_plan = None
    megan.save()
    agree()
    Customer.objects.filter(pk=megan.pk).update(service_plan=gold)
    agree()
    Customer.objects.filter(parent=demo).users().delete()  # soft: marks them Deleted
    agree()
    assert not any(n for (holder, _), n in quotas.kept_user_counts().items()
                   if holder == demo.pk)
    # A whole organization deleted: none of its users count any more.
    services.delete_customer(other_tenant["organization"])
    agree()


def test_quotas_read_the_counts_not_the_users(demo):
    space = demo.hosting_spaces.get()
    used = {u.quota: u.used for u in quotas.usage(space)}
    with CaptureQueriesContext(connection) as queries:
        quotas.usage(space)
    assert not any("COUNT(" in q["sql"].upper() and '"provisioning_customer"' in
                   q["sql"].split("FROM", 1)[1][:40] for q in queries.captured_queries)
    # Proof it is the counts that are read: a count changed behind the rows' back shows.
    UserCount.objects.filter(holder=demo).update(users=0)
    assert {u.quota: u.used for u in quotas.usage(space)}[QuotaName.USERS.value] == 0
    assert quotas.recount_users() > 0
    assert {u.quota: u.used for u in quotas.usage(space)} == used
    assert quotas.recount_users() == 0


@pytest.mark.parametrize("limit", [0, 3])
def test_a_user_quota_is_enforced_from_the_counts(demo, limit):
    from provisioning.models import HostingSpaceQuota

    space = demo.hosting_spaces.get()
    live = Customer.objects.filter(parent=demo).users().live().count()
    HostingSpaceQuota.objects.update_or_create(hosting_space=space, quota="users",
                                               defaults={"limit": live + limit})
    for n in range(limit):
        services.create_user(demo, display_name=f"Fill {n}", local_part=f"fill{n}",
                             domain="contoso.example", password=PASSWORD)
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as refused:
        services.create_user(demo, display_name="One Too Many", local_part="too.many",
                             domain="contoso.example", password=PASSWORD)
    assert "quota" in str(refused.value)
    assert not Customer.objects.filter(upn="too.many@contoso.example").exists()
    agree()
