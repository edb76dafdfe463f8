"""Everyone reads what each alarm asks of them, and its documents, outside an alarm too."""

from __future__ import annotations

from rallypoint.alarms.models import ScenarioDocument
from rallypoint.tenants.roles import Role
from tests.alarm_fixtures import fire_scenario


def test_a_person_reads_what_each_alarm_asks_of_their_role_and_its_documents(world, signed_in):
    site = world.a.site
    fire = fire_scenario(site)
    fire.instructions = {Role.EMPLOYEE: "Leave by the stairs, never the lift.", Role.LEAD: "Open the cockpitzq."}
    fire.save()
    plan = ScenarioDocument.objects.create(site=site, scenario=fire, title="Escape routes", content=b"%PDF-1.4 x",
                                           size=10)
    retired = fire_scenario(site, name="Old drillzq", is_active=False)
    old_plan = ScenarioDocument.objects.create(site=site, scenario=retired, title="Old", content=b"%PDF-1.4 y",
                                               size=10)
    employee = signed_in(Role.EMPLOYEE)
    assert 'href="/instructions/"' in employee.get("/").content.decode()
    page = employee.get("/instructions/")
    body = page.content.decode()
    assert page.status_code == 200
    assert "Leave by the stairs, never the lift." in body and "cockpitzq" not in body  # only their role's
    assert "Old drillzq" not in body  # an inactive scenario asks nothing of anyone
    assert f'href="/instructions/documents/{plan.pk}/"' in body and 'href="/structure/"' in body
    download = employee.get(f"/instructions/documents/{plan.pk}/")
    assert download.status_code == 200 and download["Content-Type"] == "application/pdf"
    assert b"".join(download.streaming_content if download.streaming else [download.content]) == b"%PDF-1.4 x"
    assert employee.get(f"/instructions/documents/{old_plan.pk}/").status_code == 404
    lead = signed_in(Role.LEAD).get("/instructions/").content.decode()
    assert "Open the cockpitzq." in lead and "never the lift" not in lead


def test_a_scenario_without_instructions_for_the_role_says_to_follow_the_message(world, signed_in):
    fire_scenario(world.a.site).save()
    body = signed_in(Role.GUEST).get("/instructions/").content.decode()
    assert "No instructions for your role" in body
