"""Loads the seed's reference data (customer, status, asset and event types) word for word."""

from django.db import migrations

from provisioning import constants as c

TABLES = {
    "CustomerType": c.CUSTOMER_TYPES,
    "StatusType": c.STATUS_TYPES,
    "AssetType": c.ASSET_TYPES,
    "EventType": c.EVENT_TYPES,
}


def load(apps, schema_editor):
    for model_name, rows in TABLES.items():
        model = apps.get_model("provisioning", model_name)
        for name, description in rows.items():
            model.objects.update_or_create(name=name, defaults={"description": description})


class Migration(migrations.Migration):
    dependencies = [("provisioning", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
