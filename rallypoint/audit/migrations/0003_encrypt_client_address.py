"""Client addresses in security events are personal data: encrypt them at rest."""

from django.db import migrations, models

import rallypoint.tenants.encryption


def encrypt_events(apps, schema_editor):
    rallypoint.tenants.encryption.encrypt_existing_rows(
        schema_editor, "audit_securityevent", ["client_ip"], site_column="site_id")


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_securityevent")]

    operations = [
        migrations.AddField("securityevent", "row_key", models.CharField(default="", editable=False, max_length=32)),
        migrations.AlterField("securityevent", "client_ip", rallypoint.tenants.encryption.EncryptedTextField(
            blank=True, null=True, verbose_name="client address")),
        migrations.RunPython(encrypt_events, elidable=False),
        migrations.AlterField("securityevent", "row_key", models.CharField(
            default=rallypoint.tenants.encryption.new_row_key, editable=False, max_length=32)),
    ]
