"""Chain the entries written before the chain existed, per site and per organisation, in the order they were
written (by id), so that an upgraded installation verifies."""

from django.db import migrations

from rallypoint.audit.chain import entry_hash

BATCH = 1000


def _close(AuditChain, chain, seq, last_hash):
    if chain is not None:
        organization_id, site_id = chain
        AuditChain.objects.create(organization_id=organization_id, site_id=site_id, last_seq=seq, last_hash=last_hash)


def chain_existing(apps, schema_editor):
    AuditEntry = apps.get_model("audit", "AuditEntry")
    AuditChain = apps.get_model("audit", "AuditChain")
    entries = AuditEntry.objects.order_by("organization_id", "site_id", "id").only(
        "id", "organization_id", "site_id", "actor_id", "at", "action", "object_type", "object_id", "changes",
        "batch")
    chain, seq, last_hash, pending = None, 0, "", []
    for entry in entries.iterator(chunk_size=BATCH):
        # Site entries chain per site, organisation-level entries per organisation.
        key = (entry.organization_id, entry.site_id)
        if key != chain:
            _close(AuditChain, chain, seq, last_hash)
            chain, seq, last_hash = key, 0, ""
        seq += 1
        entry.seq, entry.prev_hash, entry.actor_ref = seq, last_hash, entry.actor_id
        entry.hash = entry_hash(organization_id=entry.organization_id, site_id=entry.site_id, seq=seq, at=entry.at,
                                actor_ref=entry.actor_ref, action=entry.action, object_type=entry.object_type,
                                object_id=entry.object_id, changes=entry.changes, batch=entry.batch,
                                prev_hash=last_hash)
        last_hash = entry.hash
        pending.append(entry)
        if len(pending) >= BATCH:
            AuditEntry.objects.bulk_update(pending, ["seq", "prev_hash", "hash", "actor_ref"])
            pending = []
    AuditEntry.objects.bulk_update(pending, ["seq", "prev_hash", "hash", "actor_ref"])
    _close(AuditChain, chain, seq, last_hash)


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_audit_chain")]

    operations = [migrations.RunPython(chain_existing, migrations.RunPython.noop, elidable=False)]
