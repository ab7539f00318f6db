"""Every organization becomes the root of a nested-set tree of its own (with its users), so
creating a user renumbers its own organization's row only; the resellers keep trees of their
own. `parent` stays the customer tree; the nested set follows the new `tree_parent`.

The numbers of existing rows are recomputed, keeping each node's order among its siblings.
On PostgreSQL, new trees take their id from a sequence (see CustomerManager)."""

import django.db.models.deletion
import mptt.fields
from django.db import migrations, models

BUSINESS_ORGANIZATION = "BusinessOrganization"
SEQUENCE = "provisioning_customer_tree_id_seq"


def renumber(apps, schema_editor, organizations_are_roots):
    Customer = apps.get_model("provisioning", "Customer")
    rows = list(Customer.objects.order_by("tree_id", "lft", "pk").values_list(
        "pk", "parent_id", "customer_type_id"))
    children, roots = {}, []
    for pk, parent_id, kind in rows:
        if parent_id is None or (organizations_are_roots and kind == BUSINESS_ORGANIZATION):
            roots.append((pk, None))
        else:
            children.setdefault(parent_id, []).append(pk)
    numbers = []  # (pk, tree_parent_id, tree_id, lft, rght, level)
    for tree_id, (root, _) in enumerate(roots, start=1):
        counter, stack = 1, [(root, None, 0, False)]
        opened = {}
        while stack:
            pk, parent, level, done = stack.pop()
            if done:
                numbers.append((pk, parent, tree_id, opened.pop(pk), counter, level))
                counter += 1
                continue
            opened[pk] = counter
            counter += 1
            stack.append((pk, parent, level, True))
            for child in reversed(children.get(pk, [])):
                stack.append((child, pk, level + 1, False))
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        from psycopg2.extras import execute_values

        with connection.cursor() as cursor:
            execute_values(cursor.cursor, """
                UPDATE provisioning_customer AS c
                SET tree_parent_id = v.tree_parent_id, tree_id = v.tree_id, lft = v.lft,
                    rght = v.rght, level = v.level
                FROM (VALUES %s) AS v(id, tree_parent_id, tree_id, lft, rght, level)
                WHERE c.id = v.id""", numbers,
                template="(%s, %s::bigint, %s, %s, %s, %s)", page_size=5000)
            # The table is altered next: its deferred foreign-key checks must run first.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        return
    objects = []
    for pk, parent, tree_id, lft, rght, level in numbers:
        objects.append(Customer(pk=pk, tree_parent_id=parent, tree_id=tree_id, lft=lft,
                                rght=rght, level=level))
    Customer.objects.bulk_update(objects, ["tree_parent", "tree_id", "lft", "rght", "level"],
                                 batch_size=500)


def forwards(apps, schema_editor):
    renumber(apps, schema_editor, organizations_are_roots=True)
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE} "
                              "OWNED BY provisioning_customer.tree_id")
        schema_editor.execute(f"SELECT setval('{SEQUENCE}', COALESCE(MAX(tree_id), 0) + 1, "
                              "false) FROM provisioning_customer")


def backwards(apps, schema_editor):
    renumber(apps, schema_editor, organizations_are_roots=False)
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP SEQUENCE IF EXISTS {SEQUENCE}")


class Migration(migrations.Migration):

    dependencies = [
        ("provisioning", "0007_operation_alerts"),
    ]

    operations = [
        migrations.AddField(
            model_name="customer",
            name="tree_parent",
            field=mptt.fields.TreeForeignKey(
                blank=True, editable=False,
                help_text="The parent in the nested set: the parent, except none for an "
                          "organization.",
                null=True, on_delete=django.db.models.deletion.PROTECT,
                related_name="tree_children", to="provisioning.customer"),
        ),
        # TreeForeignKey and ForeignKey are the same column and constraint.
        migrations.SeparateDatabaseAndState(state_operations=[migrations.AlterField(
            model_name="customer",
            name="parent",
            field=models.ForeignKey(
                blank=True, null=True, on_delete=django.db.models.deletion.PROTECT,
                related_name="children", to="provisioning.customer"),
        )]),
        migrations.RunPython(forwards, backwards),
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(fields=["parent", "name", "id"],
                               include=("customer_type", "status"),
                               name="customer_parent_name_id"),
        ),
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(fields=["parent", "created"], name="customer_parent_created"),
        ),
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(fields=["tree_id", "rght"], name="customer_tree_rght"),
        ),
        migrations.AddConstraint(
            model_name="customer",
            constraint=models.UniqueConstraint(condition=models.Q(level=0),
                                               fields=("tree_id",),
                                               name="customer_one_root_per_tree"),
        ),
    ]
