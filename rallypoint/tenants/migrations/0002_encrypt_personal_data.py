"""Encrypt the personal data of memberships at rest (AES-256-GCM, bound to site, table, column and row)."""

from django.db import migrations, models

import rallypoint.tenants.encryption


def encrypt_memberships(apps, schema_editor):
    rallypoint.tenants.encryption.encrypt_existing_rows(
        schema_editor, "tenants_membership", ["full_name", "phone", "department"], site_column="site_id")


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]

    operations = [
        migrations.AddField("membership", "row_key", models.CharField(default="", editable=False, max_length=32)),
        migrations.AlterField("membership", "full_name",
                              rallypoint.tenants.encryption.EncryptedTextField(verbose_name="name")),
        migrations.AlterField("membership", "phone",
                              rallypoint.tenants.encryption.EncryptedTextField(blank=True, verbose_name="phone")),
        migrations.AlterField("membership", "department",
                              rallypoint.tenants.encryption.EncryptedTextField(blank=True, verbose_name="department")),
        migrations.RunPython(encrypt_memberships, elidable=False),
        migrations.AlterField("membership", "row_key", models.CharField(
            default=rallypoint.tenants.encryption.new_row_key, editable=False, max_length=32)),
    ]
