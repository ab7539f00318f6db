"""Loads the seed's eight Exchange Server 2007 feature types word for word."""

from django.db import migrations


def load(apps, schema_editor):
    from provisioning.reference_data import load_feature_types

    load_feature_types(apps)


class Migration(migrations.Migration):
    dependencies = [("servicplans", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
