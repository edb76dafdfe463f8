"""Encrypt e-mail addresses at rest (AES-256-GCM) and find users by a blind index instead."""

from django.db import migrations, models

import rallypoint.tenants.encryption


def encrypt_users(apps, schema_editor):
    from rallypoint.accounts.models import email_index  # the current helper: migrations run with today's code

    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, email FROM accounts_user")
        rows = cursor.fetchall()
    for user_id, email in rows:
        with connection.cursor() as cursor:
            cursor.execute("UPDATE accounts_user SET email = %s, email_index = %s WHERE id = %s",
                           [email.strip().lower(), email_index(email), user_id])
    rallypoint.tenants.encryption.encrypt_existing_rows(schema_editor, "accounts_user", ["email"], site_column=None)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0005_second_factor")]

    operations = [
        migrations.AddField("user", "row_key", models.CharField(default="", editable=False, max_length=32)),
        migrations.AddField("user", "email_index", models.CharField(default="", editable=False, max_length=64)),
        migrations.AlterField("user", "email", rallypoint.tenants.encryption.EncryptedTextField(verbose_name="e-mail")),
        migrations.RunPython(encrypt_users, elidable=False),
        migrations.AlterField("user", "row_key", models.CharField(
            default=rallypoint.tenants.encryption.new_row_key, editable=False, max_length=32)),
        migrations.AlterField("user", "email_index", models.CharField(editable=False, max_length=64, unique=True)),
    ]
