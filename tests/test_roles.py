"""The one role → permission table, and the document generated from it."""

from __future__ import annotations

from pathlib import Path

from django.utils import translation

from rallypoint.tenants.roles import ROLE_ORDER, ROLE_PERMISSIONS, SUPER_ADMIN, Perm, Role, render_roles_markdown

DOC = Path(__file__).resolve().parent.parent / "docs" / "roles.md"


def test_docs_roles_md_is_generated_from_the_code():
    with translation.override("en"):
        expected = render_roles_markdown()
    assert DOC.read_text(encoding="utf-8") == expected, "docs/roles.md is stale: run `make roles-doc`"


def test_only_administrators_and_super_admins_see_personal_data():
    holders = {role for role, perms in ROLE_PERMISSIONS.items() if Perm.VIEW_PERSONAL_DATA in perms}
    assert holders == {SUPER_ADMIN, Role.ADMIN}


def test_every_role_is_in_the_table_and_super_admin_holds_everything():
    assert set(ROLE_ORDER) == set(ROLE_PERMISSIONS) == {SUPER_ADMIN, *Role.values}
    assert ROLE_PERMISSIONS[SUPER_ADMIN] == frozenset(Perm)
    for role in Role.values:
        assert ROLE_PERMISSIONS[role] <= ROLE_PERMISSIONS[Role.ADMIN] | {Perm.VIEW_SITE}
