"""The customer tree at provider scale: every organization is the root of a nested-set tree
of its own, so creating a user renumbers only its own organization's row, signing an
organization up renumbers nothing, and either costs the same queries however many
customers the provider has."""

import re

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext

from provisioning import constants as c
from provisioning import services
from provisioning.models import Customer
from servicplans.models import HostingPlan, ServicePlan
from tests.support.bulk import add_organizations, add_users
from tests.test_quotas_tree import assert_tree_consistent

PASSWORD = "Tree-Pass-2026-Long"
NESTED_SET = ("tree_parent_id", "tree_id", "lft", "rght", "level", "updated")


def snapshot(queryset):
    return {row["pk"]: row for row in queryset.values("pk", *NESTED_SET)}


def sign_up(reseller, name):
    return services.sign_up_organization(
        reseller=reseller, name=name, primary_domain=f"{name.lower()}.example",
        admin_username=f"{name.lower()}-admin", admin_password=PASSWORD,
        hosting_plan=HostingPlan.objects.get(name="Business Premium"),
        service_plans=ServicePlan.objects.filter(name="Gold"))


def create_user(org, local_part, domain):
    return services.create_user(org, display_name=local_part, local_part=local_part,
                                domain=domain, password=PASSWORD,
                                service_plan=ServicePlan.objects.get(name="Gold"))


def customer_updates(queries):
    return [q["sql"] for q in queries
            if re.match(r'\s*UPDATE "provisioning_customer"', q["sql"])]


def test_creating_a_user_changes_no_row_of_another_organization(demo, reseller,
                                                                other_tenant):
    # Contoso was signed up first: in one tree per reseller, every later organization sat
    # to its right and moved with each of its new users.
    later = sign_up(reseller, "Later")
    add_users(later, 50)
    others = Customer.objects.exclude(tree_id=demo.tree_id)
    before = snapshot(others)
    with CaptureQueriesContext(connection) as queries:
        user = create_user(demo, "newcomer", "contoso.example")
    assert snapshot(others) == before
    (shift,) = customer_updates(queries)
    assert f'"tree_id" = {demo.tree_id}' in shift
    assert user.tree_id == demo.tree_id and user.tree_parent_id == demo.pk
    assert_tree_consistent()


def test_signing_up_an_organization_renumbers_nothing(demo, reseller, other_tenant):
    before = snapshot(Customer.objects.all())
    with CaptureQueriesContext(connection) as queries:
        org = sign_up(reseller, "Fresh")
    assert snapshot(Customer.objects.exclude(tree_id=org.tree_id)) == before
    assert customer_updates(queries) == []
    assert (org.tree_parent_id, org.level, org.lft, org.rght) == (None, 0, 1, 2)
    assert org.parent == reseller
    assert_tree_consistent()


def test_a_create_costs_the_same_queries_in_a_small_and_a_large_database(demo, reseller):
    space = demo.hosting_spaces.get()
    for quota in ("users", "mailboxes", "mailbox_disk_mb"):
        space.quota_overrides.create(quota=quota, unlimited=True)
    reseller.hosting_spaces.get().quota_overrides.create(quota="organizations",
                                                         unlimited=True)
    with CaptureQueriesContext(connection) as small:
        create_user(demo, "first", "contoso.example")
    with CaptureQueriesContext(connection) as small_sign_up:
        sign_up(reseller, "Small")
    # Many more organizations and users, around and inside Contoso.
    add_organizations(reseller, 300, users_each=10)
    add_users(demo, 5_000)
    with CaptureQueriesContext(connection) as large:
        create_user(demo, "second", "contoso.example")
    with CaptureQueriesContext(connection) as large_sign_up:
        sign_up(reseller, "Large")
    assert len(large) == len(small), [q["sql"][:120] for q in large.captured_queries]
    assert len(large_sign_up) == len(small_sign_up)
    assert_tree_consistent(demo)


def test_the_data_migration_renumbers_both_ways(demo, reseller, other_tenant):
    add_users(demo, 20)
    add_organizations(reseller, 5, users_each=3)
    migration = __import__("provisioning.migrations.0008_organization_trees",
                           fromlist=["renumber"])
    # As in the migration, which adds the one-root-per-tree constraint after renumbering
    # (a renumbering passes through states it refuses); the test's rollback restores it.
    with connection.cursor() as cursor:
        cursor.execute('DROP INDEX "customer_one_root_per_tree"')
    with connection.schema_editor(atomic=False) as editor:
        migration.renumber(apps, editor, organizations_are_roots=False)
    # The old layout: one tree per top-level reseller, organizations inside it.
    contoso = Customer.objects.get(pk=demo.pk)
    reseller = Customer.objects.get(pk=reseller.pk)
    assert contoso.tree_id == reseller.tree_id and contoso.level == 1
    assert reseller.lft < contoso.lft < contoso.rght < reseller.rght
    with connection.schema_editor(atomic=False) as editor:
        migration.renumber(apps, editor, organizations_are_roots=True)
    assert_tree_consistent()
    assert Customer.objects.filter(customer_type_id=c.BUSINESS_ORGANIZATION,
                                   level=0).count() == Customer.objects.organizations().count()


@pytest.mark.django_db(transaction=True)
def test_new_trees_never_share_an_id(reference_data):
    ids = Customer.objects.new_tree_ids(3) + Customer.objects.new_tree_ids(2)
    assert len(set(ids)) == 5
