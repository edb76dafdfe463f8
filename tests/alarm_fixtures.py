"""Scenarios for tests: a fire scenario with two levels at a site of the world fixture."""

from __future__ import annotations

from rallypoint.alarms.models import Level, Question, Scenario
from rallypoint.tenants.roles import Role


def fire_scenario(site, *, channels=("inapp", "email"), roles=tuple(Role.values), requires_acceptance=True,
                  **fields) -> Scenario:
    scenario = Scenario.objects.create(
        site=site, name=fields.pop("name", "Fire"), message_template="Fire at {location}. Leave the building.",
        instructions={"lead": "Go to the cockpit.", "employee": "Leave by the nearest exit."}, **fields)
    Level.objects.create(site=site, scenario=scenario, position=1, name="Pre-alarm", channels=list(channels),
                         recipient_roles=list(roles), requires_acceptance=requires_acceptance)
    Level.objects.create(site=site, scenario=scenario, position=2, name="Evacuate", channels=list(channels),
                         recipient_roles=list(Role.values), requires_acceptance=requires_acceptance)
    Question.objects.create(site=site, scenario=scenario, text="Is anyone hurt?", answers=["Yes", "No", "Unknown"])
    return scenario
