"""Chain the entries written before the chain existed, per site and per organisation, in the order they were
written (by id), so that an upgraded installation verifies."""

from django.db import migrations
from django.db.models import Q

from rallypoint.audit.chain import entry_hash

BATCH = 1000
FIELDS = ("id", "organization_id", "site_id", "actor_id", "at", "action", "object_type", "object_id", "changes",
          "batch")


def _chain_one(AuditEntry, entries) -> tuple[int, str]:
    """Number and hash one chain's entries in id order, a batch at a time (each batch read fully before it is
    written: SQLite does not isolate a running read from writes on the same connection)."""
    seq, last_hash, after = 0, "", 0
    while batch := list(entries.filter(id__gt=after).order_by("id").only(*FIELDS)[:BATCH]):
        for entry in batch:
            seq += 1
            entry.seq, entry.prev_hash, entry.actor_ref = seq, last_hash, entry.actor_id
            entry.hash = last_hash = entry_hash(
                organization_id=entry.organization_id, site_id=entry.site_id, seq=seq, at=entry.at,
                actor_ref=entry.actor_ref, action=entry.action, object_type=entry.object_type,
                object_id=entry.object_id, changes=entry.changes, batch=entry.batch, prev_hash=last_hash)
        AuditEntry.objects.bulk_update(batch, ["seq", "prev_hash", "hash", "actor_ref"])
        after = batch[-1].id
    return seq, last_hash


def chain_existing(apps, schema_editor):
    AuditEntry = apps.get_model("audit", "AuditEntry")
    AuditChain = apps.get_model("audit", "AuditChain")
    # Site entries chain per site, organisation-level entries per organisation.
    keys = set(AuditEntry.objects.order_by().values_list("organization_id", "site_id").distinct())
    for organization_id, site_id in sorted(keys, key=lambda k: (k[0], k[1] or 0)):
        of_chain = Q(site_id=site_id) if site_id is not None else Q(organization_id=organization_id,
                                                                      site__isnull=True)
        seq, last_hash = _chain_one(AuditEntry, AuditEntry.objects.filter(of_chain))
        AuditChain.objects.create(organization_id=organization_id, site_id=site_id, last_seq=seq,
                                  last_hash=last_hash)


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_audit_chain")]

    operations = [migrations.RunPython(chain_existing, migrations.RunPython.noop, elidable=False)]
