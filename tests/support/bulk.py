"""Rows straight into the database for the tests that need many of them: what matters there
is a page's queries, not thousands of provisionings."""

from django.db import connection
from django.db.models import F

from provisioning import constants as c
from provisioning.models import Customer
from provisioning.names import name_key


def add_users(organization, count, prefix="Bulk User", service_plan=None):
    """`count` live business users appended under `organization` (every other one with
    `service_plan`), with consistent nested-set numbers."""
    organization.refresh_from_db()
    start, tree = organization.rght, organization.tree_id
    slug = prefix.lower().replace(" ", "")
    users = [Customer(parent=organization, tree_parent=organization,
                      customer_type_id=c.BUSINESS_USER,
                      name=f"{prefix} {n:06d}", name_key=name_key(f"{prefix} {n:06d}"),
                      upn=f"{slug}{n:06d}@{organization.pk}.bulk.example",
                      service_plan=service_plan if n % 2 else None,
                      tree_id=tree, level=organization.level + 1,
                      lft=start + 2 * n, rght=start + 2 * n + 1) for n in range(count)]
    # Make room: whatever lies right of the organization's right edge moves along.
    shift = 2 * count
    Customer.objects.filter(tree_id=tree, lft__gt=start).update(lft=F("lft") + shift,
                                                                  rght=F("rght") + shift)
    Customer.objects.filter(tree_id=tree, lft__lt=start, rght__gte=start).update(
        rght=F("rght") + shift)
    Customer.objects.bulk_create(users, batch_size=2000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE provisioning_customer")
    organization.refresh_from_db()
    return organization


def add_organizations(reseller, count, users_each=0, prefix="Bulk Org"):
    """`count` live organizations under `reseller`, each the root of its own tree with
    `users_each` users, as sign-up and create_user lay them out."""
    tree_ids = Customer.objects.new_tree_ids(count)
    slug = prefix.lower().replace(" ", "")
    organizations = [Customer(parent=reseller, customer_type_id=c.BUSINESS_ORGANIZATION,
                              name=f"{prefix} {reseller.pk}-{n:06d}",
                              name_key=name_key(f"{prefix} {reseller.pk}-{n:06d}"),
                              tree_id=tree_id, level=0, lft=1, rght=2 + 2 * users_each)
                     for n, tree_id in enumerate(tree_ids)]
    Customer.objects.bulk_create(organizations, batch_size=2000)
    users = [Customer(parent=org, tree_parent=org, customer_type_id=c.BUSINESS_USER,
                      name=f"User {u:04d}", name_key=name_key(f"User {u:04d}"),
                      upn=f"u{u:04d}@{slug}{org.pk}.bulk.example", tree_id=org.tree_id,
                      level=1, lft=2 + 2 * u, rght=3 + 2 * u)
             for org in organizations for u in range(users_each)]
    Customer.objects.bulk_create(users, batch_size=2000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE provisioning_customer")
    return organizations
