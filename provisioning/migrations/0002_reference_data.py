"""Loads the seed's reference data (customer, status, asset and event types) word for word."""

from django.db import migrations


def load(apps, schema_editor):
    from provisioning.reference_data import load_types

    load_types(apps)


class Migration(migrations.Migration):
    dependencies = [("provisioning", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
