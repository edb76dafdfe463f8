"""Authenticator-app secrets are credentials: encrypt them at rest like personal data."""

from django.db import migrations, models

import rallypoint.tenants.encryption


def encrypt_secrets(apps, schema_editor):
    rallypoint.tenants.encryption.encrypt_existing_rows(schema_editor, "accounts_totpdevice", ["secret"],
                                                       site_column=None)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0006_encrypt_personal_data")]

    operations = [
        migrations.AddField("totpdevice", "row_key", models.CharField(default="", editable=False, max_length=32)),
        migrations.AlterField("totpdevice", "secret", rallypoint.tenants.encryption.EncryptedTextField()),
        migrations.RunPython(encrypt_secrets, elidable=False),
        migrations.AlterField("totpdevice", "row_key", models.CharField(
            default=rallypoint.tenants.encryption.new_row_key, editable=False, max_length=32)),
    ]
