"""Indexes for the lists at provider scale: trigram (pg_trgm) GIN indexes for the panel's
substring searches, which Django runs as UPPER(column) LIKE UPPER('%...%'), and an index for
an organization's operations newest first.

The trigram indexes exist on PostgreSQL only; on SQLite (the development database) this
migration adds just the operations index."""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models

TRIGRAM_INDEXES = {
    "customer_name_trgm": ("provisioning_customer", "name"),
    "customer_upn_trgm": ("provisioning_customer", "upn"),
    "customerasset_name_trgm": ("provisioning_customerasset", "name"),
}


def create_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for index, (table, column) in TRIGRAM_INDEXES.items():
        schema_editor.execute(f'CREATE INDEX IF NOT EXISTS "{index}" ON "{table}" '
                              f'USING gin ((UPPER("{column}"::text)) gin_trgm_ops)')


def drop_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for index in TRIGRAM_INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{index}"')


class Migration(migrations.Migration):

    dependencies = [
        ("provisioning", "0008_organization_trees"),
    ]

    operations = [
        # CREATE EXTENSION IF NOT EXISTS pg_trgm, on PostgreSQL only.
        TrigramExtension(),
        migrations.RunPython(create_trigram_indexes, drop_trigram_indexes),
        migrations.AddIndex(
            model_name="operation",
            index=models.Index(fields=["scope", "-id"], name="operation_scope_newest"),
        ),
    ]
