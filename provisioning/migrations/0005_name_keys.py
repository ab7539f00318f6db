"""Organization names, domains and logins unique by provisioning.names.name_key (Unicode
case folding, computed in Python) instead of the database's lower(): the key columns, filled
for the existing rows, then their unique constraints in place of the Lower() ones."""

from collections import defaultdict

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from provisioning.names import name_key

ORGANIZATION = "BusinessOrganization"
BATCH = 1000


def _collisions(what, rows):
    """rows: (key, label). A line naming the rows that share a key, if any do."""
    by_key = defaultdict(list)
    for key, label in rows:
        by_key[key].append(label)
    collisions = [" = ".join(labels) for labels in by_key.values() if len(labels) > 1]
    return [f"{what}: " + "; ".join(collisions)] if collisions else []


def fill_keys(apps, schema_editor):
    Customer = apps.get_model("provisioning", "Customer")
    CustomerAsset = apps.get_model("provisioning", "CustomerAsset")
    LoginName = apps.get_model("provisioning", "LoginName")
    User = apps.get_model(settings.AUTH_USER_MODEL)

    for model in (Customer, CustomerAsset):
        rows = []
        for row in model.objects.only("pk", "name").order_by("pk").iterator(chunk_size=BATCH):
            row.name_key = name_key(row.name)
            rows.append(row)
        model.objects.bulk_update(rows, ["name_key"], batch_size=BATCH)
    logins = [(name_key(username), pk, username)
              for pk, username in User.objects.values_list("pk", "username")]

    # The unique constraints cannot be added while two rows share a key.
    problems = [
        *_collisions("organizations", (
            (key, f"{name!r} (#{pk})") for pk, name, key in Customer.objects.filter(
                customer_type_id=ORGANIZATION).values_list("pk", "name", "name_key"))),
        *_collisions("domains", (
            (key, f"{name!r} (#{pk})") for pk, name, key in CustomerAsset.objects.values_list(
                "pk", "name", "name_key"))),
        *_collisions("logins", ((key, f"{username!r} (#{pk})") for key, pk, username in logins)),
    ]
    if problems:
        raise RuntimeError(
            "These names are one name to the directory (they differ only by case or Unicode "
            "form). Rename all but one of each, then migrate again.\n" + "\n".join(problems))
    LoginName.objects.bulk_create([LoginName(user_id=pk, key=key) for key, pk, _ in logins],
                                  batch_size=BATCH)


class Migration(migrations.Migration):

    dependencies = [
        ("provisioning", "0004_operations"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="LoginName",
            fields=[
                ("user", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE,
                                              primary_key=True, related_name="login_name",
                                              serialize=False, to=settings.AUTH_USER_MODEL)),
                ("key", models.TextField(unique=True)),
            ],
        ),
        migrations.AddField(
            model_name="customer",
            name="name_key",
            field=models.TextField(default="", editable=False),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="customerasset",
            name="name_key",
            field=models.TextField(default="", editable=False),
            preserve_default=False,
        ),
        migrations.RunPython(fill_keys, migrations.RunPython.noop),
        migrations.RemoveConstraint(
            model_name="customer",
            name="organization_name_unique",
        ),
        migrations.RemoveConstraint(
            model_name="customerasset",
            name="domain_belongs_to_one_customer",
        ),
        migrations.AddConstraint(
            model_name="customer",
            constraint=models.UniqueConstraint(
                condition=models.Q(("customer_type", ORGANIZATION)), fields=("name_key",),
                name="organization_name_key_unique",
                violation_error_message="An organization with this name already exists."),
        ),
        migrations.AddConstraint(
            model_name="customerasset",
            constraint=models.UniqueConstraint(fields=("name_key",), name="domain_key_unique"),
        ),
    ]
