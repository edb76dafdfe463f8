"""Many people at once, for the delivery tests and the benchmarks (bulk inserts, real encryption)."""

from __future__ import annotations

from django.contrib.auth.hashers import make_password

from rallypoint.accounts.models import User, email_index
from rallypoint.people.models import Membership
from rallypoint.tenants.encryption import prepare_data_keys
from rallypoint.tenants.models import Site
from rallypoint.tenants.roles import Role

BATCH = 1000


def add_people(site: Site, count: int, *, prefix: str = "person", role: str = Role.EMPLOYEE,
               phone: bool = True) -> list[Membership]:
    """``count`` active people at ``site`` with e-mail ``<prefix>-<i>@example.org`` and a phone number."""
    unusable = make_password(None)
    users = []
    for i in range(count):
        email = f"{prefix}-{i}@example.org"
        users.append(User(email=email, email_index=email_index(email), password=unusable))
    prepare_data_keys(users)
    users = User.objects.bulk_create(users, batch_size=BATCH)
    memberships = [Membership(site=site, user=user, role=role, full_name=f"Person {prefix} {i}",
                              phone=f"+4917{i:09d}" if phone else "")
                   for i, user in enumerate(users)]
    prepare_data_keys(memberships)
    return Membership.objects.bulk_create(memberships, batch_size=BATCH)
