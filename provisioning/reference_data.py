"""The seed's reference data, loaded word for word by the data migrations (and again by the
test suite after a transactional test has flushed the tables)."""

from . import constants as c

TABLES = {
    ("provisioning", "CustomerType"): c.CUSTOMER_TYPES,
    ("provisioning", "StatusType"): c.STATUS_TYPES,
    ("provisioning", "AssetType"): c.ASSET_TYPES,
    ("provisioning", "EventType"): c.EVENT_TYPES,
}


def load_types(apps):
    for (app_label, model_name), rows in TABLES.items():
        model = apps.get_model(app_label, model_name)
        for name, description in rows.items():
            model.objects.update_or_create(name=name, defaults={"description": description})


def load_feature_types(apps):
    FeatureType = apps.get_model("servicplans", "FeatureType")
    for name, native_attribute, parent_node, description in c.FEATURE_TYPES:
        FeatureType.objects.update_or_create(
            name=name,
            defaults={"native_attribute": native_attribute, "parent_node": parent_node,
                      "description": description})


def load_all():
    from django.apps import apps

    load_types(apps)
    load_feature_types(apps)
