"""The JSON API: the same scoping and need-to-know rules as the web pages."""

from __future__ import annotations

import json

from rallypoint.tenants.roles import SUPER_ADMIN, Role


def test_openapi_description_lists_the_routes(client, db):
    spec = client.get("/api/openapi.json").json()
    assert spec["info"]["title"] == "Rallypoint API"
    assert {"/api/v1/site", "/api/v1/people", "/api/v1/people/{membership_id}", "/api/v1/groups",
            "/api/v1/groups/{group_id}"} <= set(spec["paths"])


def test_it_needs_a_signed_in_user(client, world):
    assert client.get("/api/v1/people").status_code == 401


def test_people_come_with_contact_data_only_for_admins(world, signed_in):
    employee = world.a.people[Role.EMPLOYEE]
    for role, sees in ((SUPER_ADMIN, True), (Role.ADMIN, True), (Role.LEAD, False)):
        people = {p["id"]: p for p in signed_in(role).get("/api/v1/people").json()}
        assert people[employee.pk]["name"] == employee.full_name
        assert (people[employee.pk]["email"] == employee.user.email) is sees
        assert (people[employee.pk]["phone"] == employee.phone) is sees
    assert signed_in(Role.EMPLOYEE).get("/api/v1/people").status_code == 403


def test_the_current_site_and_role(world, signed_in):
    data = signed_in(Role.LEAD).get("/api/v1/site").json()
    assert data["name"] == world.a.site.name and data["role"] == "lead" and data["role_label"] == "Crisis-team lead"
    assert "people.view_personal_data" not in data["permissions"]


def test_creating_a_person_validates_and_audits(world, signed_in):
    client = signed_in(Role.ADMIN)
    bad = client.post("/api/v1/people", data=json.dumps({"name": "X", "email": "nope"}),
                      content_type="application/json")
    assert bad.status_code == 400 and "email" in bad.json()["detail"]
    malformed = client.post("/api/v1/people", data="{", content_type="application/json")
    assert malformed.status_code in (400, 422)
    good = client.post("/api/v1/people", data=json.dumps({"name": "Api Person", "email": "api@example.org"}),
                       content_type="application/json")
    assert good.status_code == 201 and good.json()["email"] == "api@example.org"
    twice = client.post("/api/v1/people", data=json.dumps({"name": "Api Person", "email": "api@example.org"}),
                        content_type="application/json")
    assert twice.status_code == 400
    assert signed_in(Role.LEAD).post("/api/v1/people", data=json.dumps({"name": "x", "email": "x@example.org"}),
                                     content_type="application/json").status_code == 403


def test_groups(world, signed_in):
    groups = signed_in(Role.MEMBER).get("/api/v1/groups").json()
    assert [g["name"] for g in groups] == [world.a.group.name]
    one = signed_in(Role.MEMBER).get(f"/api/v1/groups/{world.a.group.pk}").json()
    assert set(one["members"]) >= {m.pk for m in world.a.people.values()}
