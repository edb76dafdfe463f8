"""Every entry now has its place in a chain: the number is required and unique per chain."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_chain_existing_entries")]

    operations = [
        migrations.AlterField("auditentry", "seq", models.PositiveBigIntegerField(editable=False)),
        migrations.AlterField("auditentry", "hash", models.CharField(editable=False, max_length=64)),
        migrations.AddConstraint("auditentry", models.UniqueConstraint(
            condition=models.Q(site__isnull=False), fields=("site", "seq"), name="audit_entry_one_per_site_seq")),
        migrations.AddConstraint("auditentry", models.UniqueConstraint(
            condition=models.Q(site__isnull=True), fields=("organization", "seq"), name="audit_entry_one_per_org_seq")),
    ]
