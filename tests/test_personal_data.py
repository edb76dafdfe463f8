"""The registry of personal data: every model that holds some declares it, and the one purge job runs every
declared retention."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.db import models
from django.test.utils import isolate_apps
from django.utils import timezone, translation

from rallypoint.accounts.models import AppToken, UserSession
from rallypoint.audit.actions import record_many
from rallypoint.audit.models import AuditEntry, SecurityEvent
from rallypoint.ops.scheduler import JOBS, ensure_job_rows, run_due_jobs
from rallypoint.people import personal_data
from rallypoint.people.models import Membership
from rallypoint.realtime.models import StreamEvent
from rallypoint.tenants.encryption import EncryptedTextField
from rallypoint.tenants.roles import Role

DOC = Path(__file__).resolve().parent.parent / "docs" / "personal-data.md"

#: Field names that are personal wherever they appear.
PERSONAL_NAMES = {"email", "phone", "full_name", "client_ip", "ip", "user_agent", "address", "note", "password"}


def _refers_to_a_person(field) -> bool:
    target = getattr(field, "related_model", None)
    return field.is_relation and target in (Membership, apps.get_model(settings.AUTH_USER_MODEL))


def _personal_signals(model) -> set[str]:
    """The fields that make a model's rows personal: encrypted (we encrypt only personal data), named like
    personal data, or referring to a person (a membership or an account)."""
    found = set()
    for field in model._meta.get_fields(include_hidden=False):
        if field.auto_created and not field.concrete:
            continue  # the other side of a relation
        if isinstance(field, EncryptedTextField) or field.name in PERSONAL_NAMES or _refers_to_a_person(field):
            found.add(field.name)
    return found


def _our_models():
    return [m for m in apps.get_models() if m.__module__.startswith("rallypoint.")]


def test_every_model_with_personal_data_declares_it():
    missing = {}
    for model in _our_models():
        signals = _personal_signals(model)
        declared = personal_data.declaration_of(model)
        if signals and declared is None:
            missing[model._meta.label] = sorted(signals)
        elif declared is not None:
            undeclared = signals - set(declared.fields) - set(declared.person)
            if undeclared:
                missing[model._meta.label] = sorted(undeclared)
    assert missing == {}, "declare these in the model's module with rallypoint.people.personal_data.declare"


def test_declarations_name_real_fields_settings_and_purges():
    for declared in personal_data.declarations():
        names = {f.name for f in declared.model._meta.get_fields()}
        assert set(declared.fields) | set(declared.person) <= names, declared.label
        assert declared.why and declared.erased
        if declared.kept:
            assert isinstance(getattr(settings, declared.kept), int)
    assert set(personal_data.purges()) >= {
        "rallypoint.audit.actions.purge_expired", "rallypoint.audit.actions.purge_expired_security_events",
        "rallypoint.evacuation.presence.purge_expired", "rallypoint.realtime.events.purge_old",
        "rallypoint.accounts.sessions.purge_expired", "rallypoint.accounts.apptokens.purge_unused",
        "rallypoint.accounts.throttle.purge_stale"}


def test_a_model_is_declared_once():
    declared = personal_data.declaration_of(Membership)
    try:
        personal_data.declare(Membership, why="x", erased="y")
    except ValueError as error:
        assert "declared twice" in str(error)
    else:
        raise AssertionError("a second declaration was accepted")
    assert personal_data.declaration_of(Membership) is declared


def test_the_one_purge_job_runs_every_declared_retention(world, signed_in, settings):
    now = timezone.now()
    person = world.a.people[Role.EMPLOYEE]
    [old_entry] = record_many([AuditEntry(organization=world.org_a, site=world.a.site, action="x",
                                          object_type="site", object_id="1",
                                          at=now - timedelta(days=settings.AUDIT_RETENTION_DAYS + 1))])
    old_event = SecurityEvent.objects.create(kind=SecurityEvent.Kind.SIGN_IN, user=person.user,
                                             at=now - timedelta(days=settings.SECURITY_EVENT_RETENTION_DAYS + 1))
    old_stream = StreamEvent.objects.create(site=world.a.site, seq=10**6, type="x", payload={},
                                            at=now - timedelta(days=settings.STREAM_RETENTION_DAYS + 1))
    AppToken.objects.create(user=person.user, site=world.a.site, name="old phone", token_hash="a" * 64,
                                   last_used_at=now - timedelta(days=settings.APP_TOKEN_IDLE_DAYS + 1))
    revoked_lately = AppToken.objects.create(user=person.user, site=world.a.site, name="phone", token_hash="b" * 64,
                                             revoked_at=now - timedelta(days=1))
    signed_in(Role.EMPLOYEE).get("/")
    UserSession.objects.update(expire_date=now - timedelta(minutes=1))
    [kept_entry] = record_many([AuditEntry(organization=world.org_a, site=world.a.site, action="x",
                                           object_type="site", object_id="2")])
    ensure_job_rows()
    assert run_due_jobs("test-worker", {"personal_data.purge": JOBS["personal_data.purge"]}) == [
        "personal_data.purge"]
    assert not AuditEntry.objects.filter(pk=old_entry.pk).exists()
    assert AuditEntry.objects.filter(pk=kept_entry.pk).exists()
    assert not SecurityEvent.objects.filter(pk=old_event.pk).exists()
    assert not StreamEvent.objects.filter(pk=old_stream.pk).exists()
    assert list(AppToken.objects.values_list("pk", flat=True)) == [revoked_lately.pk]
    assert not UserSession.objects.exists()


@isolate_apps("rallypoint.people")
def test_a_new_model_with_a_personal_field_is_caught():
    class Pet(models.Model):
        owner_note = EncryptedTextField()
        keeper = models.ForeignKey(Membership, on_delete=models.CASCADE)

        class Meta:
            app_label = "people"
            managed = False

        def __str__(self) -> str:
            return "pet"

    assert _personal_signals(Pet) == {"owner_note", "keeper"}
    assert personal_data.declaration_of(Pet) is None


def test_the_page_of_personal_data_in_docs_is_current():
    with translation.override("en"):
        expected = personal_data.render_markdown()
    assert DOC.read_text(encoding="utf-8") == expected, "docs/personal-data.md is stale: run `make personal-data-doc`"
