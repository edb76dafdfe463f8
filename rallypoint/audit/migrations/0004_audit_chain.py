"""The audit trail becomes hash chains: a number, the previous hash and the own hash on each entry, the
actor's id kept as written, and a head row per chain."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0003_encrypt_client_address"),
        ("tenants", "0001_initial"),
    ]

    operations = [
        migrations.AddField("auditentry", "actor_ref", models.BigIntegerField(blank=True, editable=False, null=True)),
        migrations.AddField("auditentry", "seq", models.PositiveBigIntegerField(editable=False, null=True)),
        migrations.AddField("auditentry", "prev_hash", models.CharField(blank=True, default="", editable=False,
                                                                       max_length=64)),
        migrations.AddField("auditentry", "hash", models.CharField(default="", editable=False, max_length=64)),
        migrations.CreateModel(
            name="AuditChain",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("last_seq", models.PositiveBigIntegerField(default=0)),
                ("last_hash", models.CharField(blank=True, default="", max_length=64)),
                ("anchor_seq", models.PositiveBigIntegerField(default=0)),
                ("anchor_hash", models.CharField(blank=True, default="", max_length=64)),
                ("anchor_at", models.DateTimeField(blank=True, null=True)),
                ("organization", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+",
                                                   to="tenants.organization")),
                ("site", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE,
                                           related_name="+", to="tenants.site")),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(condition=models.Q(site__isnull=False), fields=("site",),
                                            name="audit_chain_one_per_site"),
                    models.UniqueConstraint(condition=models.Q(site__isnull=True), fields=("organization",),
                                            name="audit_chain_one_per_org"),
                ],
            },
        ),
    ]
