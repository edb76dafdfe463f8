"""Personas in two organisations, so every test can ask "and the other tenant?".

Organisation A has the sites ``a`` (where the personas work) and ``a2``;
organisation B has the site ``b``. Every personal field of every person holds a
marker that names its site, so a leak is found by searching for the marker.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from django.core import mail

from rallypoint.accounts.mfa_models import OrganizationSecurity
from rallypoint.accounts.models import User
from rallypoint.audit.models import Approval
from rallypoint.evacuation import rollcall, status
from rallypoint.people.actions import save_group
from rallypoint.people.models import Group, Membership
from rallypoint.tenants import actions, encryption
from rallypoint.tenants.models import Organization, Site
from rallypoint.tenants.roles import SUPER_ADMIN, Role

# Users are created without a password (hashing with Argon2 costs time); tests that sign in
# through the form set one with set_password().
PASSWORD = "correct horse battery staple"
pytest_plugins = ["tests.browser"]


@dataclass
class SiteWorld:
    site: Site
    people: dict[str, Membership] = field(default_factory=dict)
    group: Group | None = None
    markers: list[str] = field(default_factory=list)


@dataclass
class World:
    org_a: Organization
    org_b: Organization
    a: SiteWorld
    a2: SiteWorld
    b: SiteWorld
    super_a: User
    super_b: User

    def persona(self, role: str) -> User:
        if role == SUPER_ADMIN:
            return self.super_a
        return self.a.people[role].user


def _person(site: Site, tag: str, role: str) -> Membership:
    user = User.objects.create_user(f"{tag}-{role}@example.org")
    phone = f"+49 170 {sum(map(ord, tag)):03d}{Role.values.index(role):02d}77"
    return Membership.objects.create(site=site, user=user, role=role, phone=phone, full_name=f"Name{tag}{role}zq",
                                     department=f"Dept{tag}{role}zq")


def _site(org: Organization, tag: str) -> SiteWorld:
    site = actions.create_site(actor=None, organization=org, name=f"Site{tag}zq")
    world = SiteWorld(site=site)
    for role in Role.values:
        world.people[role] = _person(site, tag, role)
    world.group = save_group(actor=None, site=site, group=None, name=f"Group{tag}zq",
                                     description=f"About{tag}zq", members=list(world.people.values()))
    world.markers = [f"Site{tag}zq", f"Group{tag}zq", f"About{tag}zq", f"Name{tag}", f"Dept{tag}",
                     f"{tag}-admin@example.org", f"{tag}-employee@example.org"]
    return world


@pytest.fixture(autouse=True)
def quick_proof_of_work(settings):
    """The real check, with a small counter so that tests solve it in milliseconds."""
    settings.POW_MAX_COUNTER = 8


@pytest.fixture
def world(db) -> World:
    org_a = actions.create_organization(name="Org Alpha")
    org_b = actions.create_organization(name="Org Bravo")
    a, a2, b = _site(org_a, "Aa"), _site(org_a, "Ab"), _site(org_b, "Bb")
    super_a = User.objects.create_user("super-a@example.org")
    Membership.objects.create(site=a.site, user=super_a, role=Role.ADMIN, full_name="NameSuperAzq")
    actions.grant_super_admin(actor=None, organization=org_a, user=super_a)
    super_b = User.objects.create_user("super-b@example.org")
    Membership.objects.create(site=b.site, user=super_b, role=Role.ADMIN, full_name="NameSuperBzq")
    actions.grant_super_admin(actor=None, organization=org_b, user=super_b)
    b.markers.append("NameSuperBzq")
    # Tests of other features sign administrators in with force_login and must not stop at the
    # second-factor enrolment gate; tests/test_mfa.py goes back to the default policy.
    # Likewise the organisation-level four-eyes processes and trigger keys: tests of keys, sites, Super-admins and
    # the second-factor rule act directly; tests/test_approvals.py turns every process on (the default).
    direct = {"trigger_key", "second_factor_rule", "grant_super_admin", "delete_site"}
    for org in (org_a, org_b):
        OrganizationSecurity.objects.create(organization=org, second_factor=OrganizationSecurity.SecondFactor.OPTIONAL,
                                            four_eyes=[p for p in Approval.Process.values if p not in direct])
    mail.outbox.clear()
    return World(org_a=org_a, org_b=org_b, a=a, a2=a2, b=b, super_a=super_a, super_b=super_b)


@pytest.fixture
def signed_in(client, world):
    """A client signed in as the given persona of site ``a``."""

    def sign_in(role: str):
        client.force_login(world.persona(role))
        session = client.session
        session["rp_site_id"] = world.a.site.pk
        session.save()
        return client

    return sign_in


@pytest.fixture
def send_outbox():
    """Send what is due in the delivery outbox as a worker does, in this thread (the test's transaction is
    visible only here); returns how many messages went out or were settled."""
    from rallypoint.notify.worker import DeliveryWorker  # the worker module imports every app's models

    def send() -> int:
        worker = DeliveryWorker("test-outbox", threads=0)
        try:
            return worker.drain()
        finally:
            worker.close()

    return send


@pytest.fixture(autouse=True)
def fresh_key_ring():
    """A test that swaps the key file must not leave the swapped ring behind."""
    yield
    encryption.ring(reload=True)


@pytest.fixture(autouse=True)
def fresh_places():
    """Each test's database starts over (and reuses ids): the caches of who is on site and of alarms must too."""
    yield
    rollcall.forget_places()
    status.forget_alarms()
