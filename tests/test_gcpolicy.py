"""The web process's garbage-collection policy (rallypoint/realtime/gcpolicy.py)."""

from __future__ import annotations

import gc
import weakref

import pytest

from rallypoint.realtime import gcpolicy
from rallypoint.realtime.gcpolicy import GcPolicy


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture(autouse=True)
def thawed():
    gc.unfreeze()
    yield
    gc.unfreeze()


def _cycle() -> weakref.ref:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_what_survives_a_full_collection_is_frozen_once():
    policy = GcPolicy()
    assert policy.tick() is None and gc.get_freeze_count() == 0
    gc.collect()
    assert policy.tick() == "froze" and gc.get_freeze_count() > 0
    assert policy.tick() is None  # nothing new to freeze until the next full collection


def test_a_cycle_among_frozen_objects_is_collected_by_the_cleanup(monkeypatch):
    policy = GcPolicy()
    alive = _cycle()
    gc.freeze()  # the cycle was frozen while still in use, then dropped
    gc.collect()
    assert alive() is not None, "a frozen cycle is out of the collector's reach"
    policy.cleanup()
    assert alive() is None
    assert gc.get_freeze_count() > 0  # the survivors are frozen again


def test_the_cleanup_waits_for_a_quiet_site(monkeypatch):
    monkeypatch.setattr(gcpolicy, "CLEANUP_SECONDS", 0)
    monkeypatch.setattr(gcpolicy, "QUIET_SECONDS", 3600)
    policy = GcPolicy()
    policy.busy()  # an alarm event just went out
    alive = _cycle()
    gc.freeze()
    assert policy.tick() != "cleaned" and alive() is not None
    monkeypatch.setattr(gcpolicy, "QUIET_SECONDS", 0)
    assert policy.tick() == "cleaned" and alive() is None
