"""The audit trail as hash chains: tamper evidence for the Eingabekontrolle.

Each site's entries form one chain, and each organisation's own entries (no site) another. An entry
carries its number in the chain (``seq``, from 1), the hash of the entry before it (``prev_hash``; the
first entry links to ``""``) and its own ``hash``: SHA-256 over the canonical JSON (sorted keys, no
spaces, ASCII) of what the entry says — chain, organisation, site, number, UTC time, actor (as
``actor_ref``, which deleting the user does not change), action, object, changes, batch — and
``prev_hash``. The chain's head (:class:`AuditChain`) holds the newest number and hash; writers lock
it, so two transactions never take the same number.

A purge deletes the oldest entries of a chain and keeps the newest of them as the head's *anchor*
(number, hash, time): verification starts there.

What this shows: an entry changed, deleted or slipped in afterwards, through the database, breaks
the chain at that entry. What it cannot show: someone with write access to the database who
recomputes every hash from some entry on and the head too. Against that, note the head hashes
(``rallypoint verify-audit`` prints them) somewhere the database's users cannot write.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from rallypoint.audit.models import AuditChain, AuditEntry

#: What verification reads of an entry, in this order: only these columns, streamed.
COLUMNS = ("pk", "organization_id", "site_id", "seq", "at", "actor_ref", "action", "object_type", "object_id",
           "changes", "batch", "prev_hash", "hash")


def chain_key(organization_id: int, site_id: int | None) -> str:
    return f"site:{site_id}" if site_id is not None else f"org:{organization_id}"


def _plain(value: object) -> object:
    """JSON as the database gives it back: a float that is a whole number may return as an integer."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _moment(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(*, organization_id: int, site_id: int | None, seq: int, at: datetime, actor_ref: int | None,
               action: str, object_type: str, object_id: str, changes: object, batch: uuid.UUID | str | None,
               prev_hash: str) -> str:
    """The hash of an entry's content linked to ``prev_hash``: the one definition, for writing and checking."""
    content = {
        "chain": chain_key(organization_id, site_id), "organization": organization_id, "site": site_id,
        "seq": seq, "at": _moment(at), "actor": actor_ref, "action": action, "object_type": object_type,
        "object_id": str(object_id), "changes": _plain(changes),
        "batch": str(uuid.UUID(str(batch))) if batch else None, "prev": prev_hash,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _hash_of(entry: AuditEntry) -> str:
    return entry_hash(organization_id=entry.organization_id, site_id=entry.site_id, seq=entry.seq, at=entry.at,
                      actor_ref=entry.actor_ref, action=entry.action, object_type=entry.object_type,
                      object_id=entry.object_id, changes=entry.changes, batch=entry.batch,
                      prev_hash=entry.prev_hash)


# Writing -----------------------------------------------------------------------------------------------

def _of_chain(organization_id: int, site_id: int | None) -> Q:
    return Q(site_id=site_id) if site_id is not None else Q(organization_id=organization_id, site__isnull=True)


def locked_head(organization_id: int, site_id: int | None) -> AuditChain:
    """The chain's head, locked until the transaction ends; created on the chain's first entry."""
    heads = AuditChain.objects.select_for_update()
    head = heads.filter(_of_chain(organization_id, site_id)).first()
    if head is None:
        # Two first writers: the unique constraint lets one insert, the other finds its row.
        AuditChain.objects.get_or_create(organization_id=organization_id, site_id=site_id)
        head = heads.get(_of_chain(organization_id, site_id))
    return head


def _settle(entry: AuditEntry) -> None:
    """Give the entry the form it will have when read back, so its hash is the one verification computes."""
    entry.changes = json.loads(json.dumps(entry.changes or {}))
    entry.object_id = str(entry.object_id)
    entry.batch = uuid.UUID(str(entry.batch)) if entry.batch else None
    if timezone.is_naive(entry.at):
        entry.at = timezone.make_aware(entry.at, UTC)
    entry.at = entry.at.astimezone(UTC)
    entry.actor_ref = entry.actor_id
    if entry.organization_id is None and entry.site_id is not None:
        entry.organization_id = entry.site.organization_id


def link(entries: Iterable[AuditEntry]) -> None:
    """Number and hash unsaved entries into their chains; the caller saves them in the same transaction.

    Each chain's head is read and written once, whatever the number of entries. One call locks its heads
    in a fixed order, so two calls that touch the same chains cannot deadlock each other. (A transaction that
    records into a site's chain and then its organisation's, while another does the reverse, can: PostgreSQL
    then aborts one of them, as for any deadlock.)
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit entries are linked inside the transaction that saves them")
    by_chain: dict[tuple[int, int | None], list[AuditEntry]] = {}
    for entry in entries:
        _settle(entry)
        by_chain.setdefault((entry.organization_id, entry.site_id), []).append(entry)
    for (organization_id, site_id), members in sorted(by_chain.items(), key=lambda c: (c[0][0], c[0][1] or 0)):
        head = locked_head(organization_id, site_id)
        for entry in members:
            head.last_seq += 1
            entry.seq, entry.prev_hash = head.last_seq, head.last_hash
            entry.hash = _hash_of(entry)
            head.last_hash = entry.hash
        head.save(update_fields=["last_seq", "last_hash"])


def cut(organization_id: int, site_id: int | None, up_to_seq: int) -> int:
    """Delete a chain's entries up to number ``up_to_seq``, keeping the last of them as the anchor."""
    with transaction.atomic():
        head = locked_head(organization_id, site_id)
        entries = AuditEntry.objects.filter(_of_chain(organization_id, site_id), seq__lte=up_to_seq)
        last = entries.order_by("-seq").values("seq", "hash", "at").first()
        if last is None:
            return 0
        if last["seq"] > head.anchor_seq:
            head.anchor_seq, head.anchor_hash, head.anchor_at = last["seq"], last["hash"], last["at"]
            head.save(update_fields=["anchor_seq", "anchor_hash", "anchor_at"])
        deleted, _per_model = entries.delete()
        return deleted


# Verifying ---------------------------------------------------------------------------------------------

PROBLEMS = {
    "hash": _("its content was changed after it was written (hash mismatch)"),
    "link": _("it does not link to the entry before it (previous hash mismatch)"),
    "gap": _("entries before it are missing (gap in the numbering)"),
    "repeat": _("its number was used before (entry repeated or out of order)"),
    "anchor": _("the oldest entries are missing and no purge recorded it (missing anchor)"),
    "beyond": _("it was written past the end of the chain"),
    "tail": _("the newest entries are missing (the chain ends before its recorded end)"),
    "head": _("the chain has no recorded end (missing chain head)"),
}


@dataclass
class ChainReport:
    """What verifying one chain found."""

    organization_id: int
    site_id: int | None
    entries: int = 0
    last_seq: int = 0
    head_hash: str = ""
    anchor_seq: int = 0
    anchor_at: datetime | None = None
    #: The first entry at which the chain breaks (its number, and its id if the entry exists), and why.
    broken_seq: int | None = None
    broken_id: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem

    @property
    def key(self) -> str:
        return chain_key(self.organization_id, self.site_id)

    @property
    def reason(self) -> str:
        return str(PROBLEMS[self.problem]) if self.problem else ""

    def break_at(self, problem: str, seq: int | None, entry_id: int | None = None) -> None:
        if not self.problem:
            self.problem, self.broken_seq, self.broken_id = problem, seq, entry_id


def _rows(organization_id: int, site_id: int | None, last_seq: int) -> Iterator[dict]:
    rows = (AuditEntry.objects.filter(_of_chain(organization_id, site_id), seq__lte=last_seq).order_by("seq")
            .values(*COLUMNS).iterator(chunk_size=2000))
    yield from rows


def _check(report: ChainReport, row: dict, seq: int, prev: str) -> None:
    """Check one entry against where the chain stands (``seq`` expected next, ``prev`` the hash to link to)."""
    if row["seq"] < seq:
        report.break_at("repeat", row["seq"], row["pk"])
    elif row["seq"] > seq:
        report.break_at("anchor" if seq == 1 else "gap", row["seq"], row["pk"])
    elif row["prev_hash"] != prev:
        report.break_at("link", row["seq"], row["pk"])
    elif entry_hash(**{k: row[k] for k in COLUMNS if k not in ("pk", "hash")}) != row["hash"]:
        report.break_at("hash", row["seq"], row["pk"])


def _walk(head: AuditChain) -> ChainReport:
    """Walk a chain in order from its anchor up to its head, recomputing every hash."""
    report = ChainReport(head.organization_id, head.site_id, last_seq=head.last_seq, head_hash=head.last_hash,
                         anchor_seq=head.anchor_seq, anchor_at=head.anchor_at)
    seq, prev = head.anchor_seq + 1, head.anchor_hash
    for row in _rows(head.organization_id, head.site_id, head.last_seq):
        report.entries += 1
        if not report.problem:  # after the first break, only count
            _check(report, row, seq, prev)
            seq, prev = row["seq"] + 1, row["hash"]
    if not report.problem and (seq - 1, prev) != (head.last_seq, head.last_hash):
        report.break_at("tail", head.last_seq)
    return report


def _beyond(report: ChainReport) -> None:
    """Entries numbered past the head were not written through the chain (entries written meanwhile are
    numbered within the head read afterwards)."""
    chain = AuditEntry.objects.filter(_of_chain(report.organization_id, report.site_id))
    rogue = chain.filter(seq__gt=report.last_seq).order_by("seq").values("pk", "seq").first()
    if rogue is None:
        return
    head = AuditChain.objects.filter(_of_chain(report.organization_id, report.site_id)).first()
    if head is None or rogue["seq"] > head.last_seq:
        report.entries += chain.filter(seq__gt=report.last_seq).count()
        report.break_at("beyond", rogue["seq"], rogue["pk"])


def _headless(organization_id: int, site_id: int | None) -> ChainReport:
    chain = AuditEntry.objects.filter(_of_chain(organization_id, site_id))
    report = ChainReport(organization_id, site_id, entries=chain.count())
    first = chain.order_by("seq").values("pk", "seq").first()
    if first is not None:
        report.break_at("head", first["seq"], first["pk"])
    return report


def verify_chain(organization_id: int, site_id: int | None) -> ChainReport:
    """Verify one chain: the first entry at which it breaks, and why, or that it is whole."""
    for _attempt in range(3):
        head = AuditChain.objects.filter(_of_chain(organization_id, site_id)).first()
        if head is None:
            return _headless(organization_id, site_id)
        report = _walk(head)
        if report.ok:
            _beyond(report)
        again = AuditChain.objects.filter(pk=head.pk).values_list("anchor_seq", flat=True).first()
        if report.ok or again == head.anchor_seq:
            return report
        # A purge cut the chain while it was read: read it again from the new anchor.
    return report


def chains(*, organization_id: int | None = None, site_id: int | None = None) -> list[tuple[int, int | None]]:
    """Every chain, as (organisation, site): those with a head, and any entries' whose head is gone."""
    heads = AuditChain.objects.all()
    entries = AuditEntry.objects.all()
    if site_id is not None:
        heads, entries = heads.filter(site_id=site_id), entries.filter(site_id=site_id)
    if organization_id is not None:
        heads, entries = heads.filter(organization_id=organization_id), entries.filter(organization_id=organization_id)
    found = set(heads.values_list("organization_id", "site_id"))
    found |= set(entries.order_by().values_list("organization_id", "site_id").distinct())
    return sorted(found, key=lambda c: (c[0], c[1] or 0))


def verify_all(*, organization_id: int | None = None, site_id: int | None = None) -> list[ChainReport]:
    """Verify every chain (of one organisation, or one site's only)."""
    return [verify_chain(org, site) for org, site in chains(organization_id=organization_id, site_id=site_id)]
