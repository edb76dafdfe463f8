"""What a key of one's own costs (crypto-shredding): reading many people's names, as the roll call does.

    .venv/bin/python benchmarks/person_keys.py [--people 10000] [--database-url postgresql://…]

A fresh database in a temporary data directory (its own key file and key store) gets N people. Their names
are read three ways, each the best of five runs:

- **baseline**: the same names under the installation's key ring (``v1`` tokens, as before data keys);
- **person keys, cold**: under each person's own data key, with no key in memory (every key fetched from
  the key store and unwrapped), as a process's first roll call after a start;
- **person keys, warm**: the same, with the keys in memory (the next five minutes).

Also the time to make N data keys at once (``prepare_data_keys``) and one at a time (a person added on a
page), and to destroy one. Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _best(fn, runs: int = 5) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="rp-person-keys-"))
    os.environ["RP_DATA_DIR"] = str(data)
    if args.database_url:
        os.environ["RP_DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rallypoint.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from rallypoint.lib.crypto import aad_for, encrypt
    from rallypoint.people.models import Membership
    from rallypoint.tenants import actions, encryption
    from rallypoint.tenants.encryption import decrypt_values, prepare_data_keys

    call_command("migrate", verbosity=0)
    site = actions.create_site(actor=None, organization=actions.create_organization(name="Bench"), name="Bench")
    people = [Membership(site=site, kind="listed", full_name=f"Person {i:05d}") for i in range(args.people)]
    start = time.perf_counter()
    prepare_data_keys(people)
    made_at_once = (time.perf_counter() - start) * 1000
    Membership.objects.bulk_create(people, batch_size=1000)
    start = time.perf_counter()
    for _ in range(100):
        encryption.data_cipher(encryption.new_row_key(), create=True)
    made_one_by_one = (time.perf_counter() - start) * 10  # ms per key, of 100

    rows = list(Membership.objects.filter(site=site).values_list("pk", "site_id", "row_key", "full_name"))
    ring = encryption.ring()
    ring_rows = [(pk, site_id, row_key, encrypt(ring, f"Person {pk}", aad_for(site_id, "tenants_membership",
                                                                              "full_name", row_key)))
                 for pk, site_id, row_key, _token in rows]

    def cold():
        encryption._cipher_cache.clear()
        decrypt_values(Membership, "full_name", rows)

    baseline = _best(lambda: decrypt_values(Membership, "full_name", ring_rows))
    cold_ms = _best(cold)
    decrypt_values(Membership, "full_name", rows)
    warm_ms = _best(lambda: decrypt_values(Membership, "full_name", rows))
    start = time.perf_counter()
    encryption.destroy_data_keys([people[0].data_key])
    destroy_ms = (time.perf_counter() - start) * 1000
    store = "PostgreSQL" if args.database_url else "SQLite"
    print(f"{args.people} names ({store} database, key store {encryption.store()!r})")
    print(f"  baseline, the key ring only:      {baseline:8.1f} ms")
    print(f"  person keys, cold (fetch+unwrap): {cold_ms:8.1f} ms  ({cold_ms / baseline:.2f}x)")
    print(f"  person keys, warm:                {warm_ms:8.1f} ms  ({warm_ms / baseline:.2f}x)")
    print(f"  making {args.people} data keys at once: {made_at_once:.0f} ms; one at a time: {made_one_by_one:.2f} ms "
          "each")
    print(f"  destroying one data key: {destroy_ms:.1f} ms")


if __name__ == "__main__":
    main()
