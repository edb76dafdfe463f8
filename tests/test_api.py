"""The JSON API: the same scoping and need-to-know rules as the web pages."""

from __future__ import annotations

import json
import re

from rallypoint.api.docs import ValidationErrorOut
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


# Documentation ----------------------------------------------------------------------------------

def test_the_docs_are_for_signed_in_people_and_the_description_stays_public(client, world, signed_in):
    anonymous = client.get("/api/docs")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/?next=/api/docs")
    assert client.get("/api/openapi.json").status_code == 200
    page = signed_in(Role.EMPLOYEE).get("/api/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-openapi-url="/api/openapi.json"' in html
    assert "/settings/api-keys/" not in html  # an employee may not manage keys: no link to them


def test_the_docs_load_swagger_ui_from_our_own_static_files_under_the_nonce_policy(world, signed_in):
    page = signed_in(Role.LEAD).get("/api/docs")
    policy = page["Content-Security-Policy"]
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
    html = page.content.decode()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert any("/static/ninja/swagger-ui-bundle.js" in tag for tag in scripts)
    for tag in scripts:
        assert re.search(r'\bsrc="/static/[^"]+"', tag) and f'nonce="{nonce}"' in tag, tag
    for tag in re.findall(r"<link\b[^>]*>", html):
        assert re.search(r'\bhref="/static/', tag), tag
    bundle = signed_in(Role.LEAD).get("/static/ninja/swagger-ui-bundle.js")
    assert bundle.status_code == 200


def test_the_description_lists_the_422_answer_of_every_operation_that_takes_input(client, db):
    spec = client.get("/api/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert schemas["ValidationErrorOut"]["required"] == ["detail"]
    assert {"type", "loc", "msg"} <= set(schemas["ValidationProblem"]["required"])
    with_input, without_input = set(), set()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if operation.get("parameters") or operation.get("requestBody"):
                with_input.add((method, path))
                answer = operation["responses"]["422"]
                assert answer["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ValidationErrorOut"}
                assert "Validation error" in answer["description"]
            else:
                without_input.add((method, path))
                assert "422" not in operation["responses"], (method, path)
    assert {("post", "/api/v1/people"), ("post", "/api/v1/alarms"), ("get", "/api/v1/people/{membership_id}"),
            ("post", "/api/v1/alarms/{alarm_id}/answer")} <= with_input
    assert ("get", "/api/v1/site") in without_input


def test_a_422_answer_has_the_documented_shape(world, signed_in):
    client = signed_in(Role.ADMIN)
    missing = client.post("/api/v1/people", data=json.dumps({"email": "x@example.org"}),
                          content_type="application/json")
    not_a_number = client.get("/api/v1/people/abc")
    for response, where in ((missing, ["body", "payload", "name"]), (not_a_number, ["path", "membership_id"])):
        assert response.status_code == 422
        body = ValidationErrorOut.model_validate(response.json())
        assert [problem.loc for problem in body.detail] == [where]
