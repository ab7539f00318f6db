"""Loads the seed's eight Exchange Server 2007 feature types word for word."""

from django.db import migrations

from provisioning.constants import FEATURE_TYPES


def load(apps, schema_editor):
    FeatureType = apps.get_model("servicplans", "FeatureType")
    for name, native_attribute, parent_node, description in FEATURE_TYPES:
        FeatureType.objects.update_or_create(
            name=name,
            defaults={"native_attribute": native_attribute, "parent_node": parent_node,
                      "description": description},
        )


class Migration(migrations.Migration):
    dependencies = [("servicplans", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
