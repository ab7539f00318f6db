"""On PostgreSQL the database itself refuses to update or delete an event, so not even raw
SQL or a future bug in the ORM layer can rewrite the billing record."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION provisioning_event_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'Events are append-only: an event cannot be updated or deleted';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER provisioning_event_append_only
    BEFORE UPDATE OR DELETE ON provisioning_event
    FOR EACH ROW EXECUTE FUNCTION provisioning_event_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS provisioning_event_append_only ON provisioning_event;
DROP FUNCTION IF EXISTS provisioning_event_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("provisioning", "0002_reference_data")]
    operations = [migrations.RunPython(forwards, backwards)]
