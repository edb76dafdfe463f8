"""Pages of the alarm core: scenarios, the trigger flow, the alarm page, answer links, the cockpit.

Thin: every change goes through ``actions`` or ``scenario_actions``; tenant
rows are reached only through ``for_site(request.site)``.
"""

from __future__ import annotations

import copy
import secrets
import time
from datetime import datetime
from datetime import time as dt_time
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rallypoint.accounts.models import UserSession
from rallypoint.alarms import actions, links
from rallypoint.alarms import scenario_actions as manage
from rallypoint.alarms.forms import (
    DocumentForm,
    EndAlarmForm,
    HistoryFilterForm,
    LevelForm,
    QuestionForm,
    ScenarioForm,
    TriggerForm,
    UpdateAlarmForm,
)
from rallypoint.alarms.models import (
    CHANNEL_CHOICES,
    Alarm,
    AlarmEvent,
    AlarmRecipient,
    Level,
    Question,
    Scenario,
    ScenarioDocument,
)
from rallypoint.evacuation import rollcall
from rallypoint.evacuation import status as evacuation_status
from rallypoint.evacuation.models import Source, Status
from rallypoint.evacuation.views import my_status_context
from rallypoint.notify.messages import fill_template
from rallypoint.people.models import Group
from rallypoint.tenants.roles import Perm, Role
from rallypoint.tenants.scoping import accessible_sites, has_perm, site_permission_required
from rallypoint.web.forms import add_validation_errors as _form_errors

WAITING_LIST_LIMIT = 250


def _get(queryset, **lookup):
    obj = queryset.filter(**lookup).first()
    if obj is None:
        raise Http404
    return obj


def _scenario(request, scenario_id: int) -> Scenario:
    return _get(Scenario.objects.for_site(request.site), pk=scenario_id)


def _active_alarm_of(scenario: Scenario) -> Alarm | None:
    return Alarm.objects.filter(scenario=scenario, state=Alarm.State.ACTIVE).first()


# Scenarios -----------------------------------------------------------------------------------------

@require_GET
@site_permission_required(Perm.MANAGE_SCENARIOS)
def scenario_list(request):
    scenarios = Scenario.objects.for_site(request.site).prefetch_related("levels")
    active = set(Alarm.objects.for_site(request.site).filter(state=Alarm.State.ACTIVE)
                 .values_list("scenario_id", flat=True))
    return render(request, "alarms/scenario_list.html", {"scenarios": scenarios, "active": active})


def _save_scenario(request, scenario: Scenario | None):
    initial = ScenarioForm.initial_for(scenario) if scenario else {}
    form = ScenarioForm(request.POST or None, initial=initial, site=request.site)
    if request.method == "POST" and form.is_valid():
        try:
            scenario = manage.save_scenario(actor=request.user, site=request.site, scenario=scenario,
                                            data=form.scenario_data())
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, _("Scenario saved."))
            return redirect("alarms:scenario", scenario_id=scenario.pk)
    context = {"form": form, "scenario": scenario}
    if scenario is not None:
        context.update(levels=scenario.levels.all(), questions=scenario.questions.all(),
                       documents=scenario.documents.defer("content"), document_form=DocumentForm(),
                       active_alarm=_active_alarm_of(scenario))
    return render(request, "alarms/scenario_form.html", context, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@site_permission_required(Perm.MANAGE_SCENARIOS)
def scenario_create(request):
    return _save_scenario(request, None)


@require_http_methods(["GET", "POST"])
@site_permission_required(Perm.MANAGE_SCENARIOS)
def scenario_edit(request, scenario_id: int):
    return _save_scenario(request, _scenario(request, scenario_id))


def _refused(request, exc: ValidationError, scenario: Scenario):
    messages.error(request, " ".join(exc.messages))
    return redirect("alarms:scenario", scenario_id=scenario.pk)


@require_POST
@site_permission_required(Perm.MANAGE_SCENARIOS)
def scenario_delete(request, scenario_id: int):
    scenario = _scenario(request, scenario_id)
    try:
        manage.delete_scenario(actor=request.user, scenario=scenario)
    except ValidationError as exc:
        return _refused(request, exc, scenario)
    messages.success(request, _("Scenario deleted."))
    return redirect("alarms:scenarios")


def _level(scenario: Scenario, level_id: int) -> Level:
    return _get(Level.objects.for_site(scenario.site_id), scenario=scenario, pk=level_id)


def _save_level(request, scenario: Scenario, level: Level | None):
    initial = LevelForm.initial_for(level) if level else {"position": scenario.levels.count() + 1}
    form = LevelForm(request.POST or None, initial=initial, scenario=scenario, level=level)
    if request.method == "POST" and form.is_valid():
        try:
            manage.save_level(actor=request.user, scenario=scenario, level=level, data=form.cleaned_data)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, _("Level saved."))
            return redirect("alarms:scenario", scenario_id=scenario.pk)
    return render(request, "alarms/level_form.html", {"form": form, "scenario": scenario, "level": level},
                  status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@site_permission_required(Perm.MANAGE_SCENARIOS)
def level_create(request, scenario_id: int):
    return _save_level(request, _scenario(request, scenario_id), None)


@require_http_methods(["GET", "POST"])
@site_permission_required(Perm.MANAGE_SCENARIOS)
def level_edit(request, scenario_id: int, level_id: int):
    scenario = _scenario(request, scenario_id)
    return _save_level(request, scenario, _level(scenario, level_id))


@require_POST
@site_permission_required(Perm.MANAGE_SCENARIOS)
def level_delete(request, scenario_id: int, level_id: int):
    scenario = _scenario(request, scenario_id)
    try:
        manage.delete_level(actor=request.user, level=_level(scenario, level_id))
    except ValidationError as exc:
        return _refused(request, exc, scenario)
    messages.success(request, _("Level deleted."))
    return redirect("alarms:scenario", scenario_id=scenario.pk)


def _save_question(request, scenario: Scenario, question: Question | None):
    initial = QuestionForm.initial_for(question) if question else {"position": scenario.questions.count() + 1}
    form = QuestionForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            manage.save_question(actor=request.user, scenario=scenario, question=question,
                                 text=form.cleaned_data["text"], answers=form.answers(),
                                 position=form.cleaned_data["position"])
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, _("Question saved."))
            return redirect("alarms:scenario", scenario_id=scenario.pk)
    return render(request, "alarms/question_form.html", {"form": form, "scenario": scenario, "question": question},
                  status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@site_permission_required(Perm.MANAGE_SCENARIOS)
def question_create(request, scenario_id: int):
    return _save_question(request, _scenario(request, scenario_id), None)


@require_http_methods(["GET", "POST"])
@site_permission_required(Perm.MANAGE_SCENARIOS)
def question_edit(request, scenario_id: int, question_id: int):
    scenario = _scenario(request, scenario_id)
    question = _get(Question.objects.for_site(request.site), scenario=scenario, pk=question_id)
    return _save_question(request, scenario, question)


@require_POST
@site_permission_required(Perm.MANAGE_SCENARIOS)
def question_delete(request, scenario_id: int, question_id: int):
    scenario = _scenario(request, scenario_id)
    question = _get(Question.objects.for_site(request.site), scenario=scenario, pk=question_id)
    try:
        manage.delete_question(actor=request.user, question=question)
    except ValidationError as exc:
        return _refused(request, exc, scenario)
    messages.success(request, _("Question deleted."))
    return redirect("alarms:scenario", scenario_id=scenario.pk)


@require_POST
@site_permission_required(Perm.MANAGE_SCENARIOS)
def document_upload(request, scenario_id: int):
    scenario = _scenario(request, scenario_id)
    form = DocumentForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            manage.add_document(actor=request.user, scenario=scenario, title=form.title_or_name(),
                                content=form.cleaned_data["file"].read())
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, _("Document added."))
            return redirect("alarms:scenario", scenario_id=scenario.pk)
    messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
    return redirect("alarms:scenario", scenario_id=scenario.pk)


@require_POST
@site_permission_required(Perm.MANAGE_SCENARIOS)
def document_delete(request, scenario_id: int, document_id: int):
    scenario = _scenario(request, scenario_id)
    document = _get(ScenarioDocument.objects.for_site(request.site).defer("content"), scenario=scenario,
                    pk=document_id)
    try:
        manage.delete_document(actor=request.user, document=document)
    except ValidationError as exc:
        return _refused(request, exc, scenario)
    messages.success(request, _("Document deleted."))
    return redirect("alarms:scenario", scenario_id=scenario.pk)


def _pdf_response(document: ScenarioDocument) -> HttpResponse:
    response = HttpResponse(bytes(document.content), content_type="application/pdf")
    name = "".join(c if c.isalnum() or c in " ._-" else "_" for c in document.title)[:80].strip() or "document"
    response["Content-Disposition"] = f'attachment; filename="{name}.pdf"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
@site_permission_required(Perm.MANAGE_SCENARIOS)
def scenario_document(request, scenario_id: int, document_id: int):
    scenario = _scenario(request, scenario_id)
    return _pdf_response(_get(ScenarioDocument.objects.for_site(request.site), scenario=scenario, pk=document_id))


# What to do: the scenarios' instructions outside an alarm ------------------------------------------

@require_GET
@site_permission_required(Perm.VIEW_SITE)
def instructions(request):
    """Every active scenario of the site with what it asks of this person's role and its documents, to read
    before anything happens (during an alarm its page shows the same)."""
    scenarios = (Scenario.objects.for_site(request.site).filter(is_active=True).prefetch_related("documents")
                 .order_by("priority", "name"))
    rows = [{"scenario": s, "instruction": s.instruction_for(request.site_role), "documents": list(s.documents.all())}
            for s in scenarios]
    return render(request, "alarms/instructions.html", {
        "rows": rows, "plans": Perm.VIEW_STRUCTURE in request.site_perms})


@require_GET
@site_permission_required(Perm.VIEW_SITE)
def instruction_document(request, document_id: int):
    return _pdf_response(_get(ScenarioDocument.objects.for_site(request.site), scenario__is_active=True,
                              pk=document_id))


# Triggering ----------------------------------------------------------------------------------------

def _triggerable(request, scenario_id: int) -> Scenario:
    scenario = _scenario(request, scenario_id)
    if not scenario.levels.exists() or not actions.can_trigger(request.user, request.site, scenario):
        raise PermissionDenied
    return scenario


@require_GET
@site_permission_required(Perm.TRIGGER_ALARMS)
def trigger_start(request):
    scenarios = actions.triggerable_scenarios(request.user, request.site)
    return render(request, "alarms/trigger_start.html", {"scenarios": scenarios})


def _new_request_id() -> str:
    return "web-" + secrets.token_urlsafe(18)


def _raise(request, scenario: Scenario, form: TriggerForm):
    data = form.cleaned_data
    try:
        alarm, _created = actions.trigger_alarm(
            site=request.site, scenario=scenario, level=data.get("level"), user=request.user,
            is_drill=data.get("is_drill", False), location_text=data.get("location_text", ""),
            building=data.get("building"), floor=data.get("floor"), zone=data.get("zone"),
            latitude=data.get("latitude"), longitude=data.get("longitude"), answers=form.answers(),
            note=data.get("note", ""), idempotency_key=form.idempotency_key())
    except ValidationError as exc:
        _form_errors(form, exc)
        return None
    if scenario.silent:
        # Threat situations: nothing on this screen may show that an alarm was raised.
        messages.success(request, _("Sent."))
        return redirect("web:home")
    return redirect("alarms:detail", alarm_id=alarm.pk)


@require_http_methods(["GET", "POST"])
@site_permission_required(Perm.TRIGGER_ALARMS)
def trigger_details(request, scenario_id: int):
    """The full flow: level, location, extra information, drill → review → raise. Works without script."""
    scenario = _triggerable(request, scenario_id)
    step = request.POST.get("step", "")
    form = TriggerForm(request.POST if request.method == "POST" else None, scenario=scenario,
                       initial={"request_id": _new_request_id()})
    template = "alarms/trigger_form.html"
    if request.method == "POST" and form.is_valid() and step in ("review", "raise"):
        if step == "raise":
            response = _raise(request, scenario, form)
            if response is not None:
                return response
        else:
            template = "alarms/trigger_confirm.html"
    return render(request, template, {"form": form, "scenario": scenario},
                  status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@site_permission_required(Perm.TRIGGER_ALARMS)
def trigger_quick(request, scenario_id: int):
    """A quick alarm: this page, then one tap on “Raise alarm”. First level, no questions."""
    scenario = _triggerable(request, scenario_id)
    if not scenario.quick:
        return redirect("alarms:new_details", scenario_id=scenario.pk)
    form = TriggerForm(request.POST if request.method == "POST" else None, scenario=scenario, quick=True,
                       initial={"request_id": _new_request_id()})
    if request.method == "POST" and form.is_valid():
        response = _raise(request, scenario, form)
        if response is not None:
            return response
    return render(request, "alarms/trigger_quick.html", {"form": form, "scenario": scenario,
                                                         "level": scenario.levels.first()},
                  status=400 if form.errors else 200)


# The alarm page ------------------------------------------------------------------------------------

def _alarm(request, alarm_id: int) -> Alarm:
    return _get(Alarm.objects.for_site(request.site).select_related("scenario", "level", "site"), pk=alarm_id)


def _recipient(request, alarm: Alarm) -> AlarmRecipient | None:
    if request.membership is None:
        return None
    return AlarmRecipient.objects.filter(alarm=alarm, membership=request.membership).first()


def _viewable_alarm(request, alarm_id: int) -> tuple[Alarm, AlarmRecipient | None]:
    """The alarm, if the person is a recipient, raised it, or watches the cockpit; else 404."""
    alarm = _alarm(request, alarm_id)
    recipient = _recipient(request, alarm)
    mine = request.membership is not None and alarm.triggered_by_id == request.membership.pk
    if recipient is None and not mine and Perm.VIEW_COCKPIT not in request.site_perms:
        raise Http404
    return alarm, recipient


def _my_role(request) -> str:
    if request.membership is not None:
        return request.membership.role
    return request.site_role if request.site_role in Role.values else Role.ADMIN


def _message(alarm: Alarm) -> str:
    """The scenario's message; a place not given reads as such rather than as an empty gap."""
    if not alarm.location_text:
        alarm = copy.copy(alarm)
        alarm.location_text = _("place not given")
    return fill_template(alarm.scenario.message_template, alarm)


def alarm_context(alarm: Alarm, role: str | None) -> dict:
    return {"alarm": alarm, "scenario": alarm.scenario, "level": alarm.level, "message": _message(alarm),
            "instruction": alarm.scenario.instruction_for(role) if role else "",
            "site_zone": alarm.site.time_zone}


@require_GET
@site_permission_required(Perm.VIEW_SITE)
def detail(request, alarm_id: int):
    alarm, recipient = _viewable_alarm(request, alarm_id)
    if recipient is not None and recipient.seen_at is None:
        if actions.mark_seen(alarm_id=alarm.pk, membership_id=recipient.membership_id):
            actions.counts_changed(alarm)
    context = alarm_context(alarm, _my_role(request))
    context.update(recipient=recipient, documents=alarm.scenario.documents.defer("content"),
                   can_answer=recipient is not None and alarm.is_active,
                   raised_by_me=request.membership is not None and alarm.triggered_by_id == request.membership.pk)
    context.update(my_status_context(request, alarm))
    return render(request, "alarms/detail.html", context)


@require_POST
@site_permission_required(Perm.VIEW_SITE)
def answer(request, alarm_id: int):
    alarm, recipient = _viewable_alarm(request, alarm_id)
    choice = request.POST.get("answer", "")
    if recipient is None:
        raise Http404
    try:
        actions.answer_alarm(alarm=alarm, membership=recipient.membership, answer=choice, via="app")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Thank you: you accepted.") if choice == "accepted"
                         else _("Thank you: you declined."))
    return redirect("alarms:detail", alarm_id=alarm.pk)


@require_GET
@site_permission_required(Perm.VIEW_SITE)
def alarm_document(request, alarm_id: int, document_id: int):
    alarm, _recipient_row = _viewable_alarm(request, alarm_id)
    return _pdf_response(_get(ScenarioDocument.objects.for_site(request.site), scenario_id=alarm.scenario_id,
                              pk=document_id))


# Answer links (e-mail, SMS) ------------------------------------------------------------------------

def _link_page(request, status: int, context: dict) -> HttpResponse:
    response = render(request, "alarms/answer_link.html", context, status=status)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    # Django logs 4xx answers with their path, and the path holds the token: never log it.
    response._has_been_logged = True
    return response


def _dead_link(request, token: str) -> HttpResponse:
    parsed = links.parse_token(token)
    if parsed is None:
        return _link_page(request, 404, {"problem": "unknown"})
    if parsed[1] < time.time():
        return _link_page(request, 410, {"problem": "expired"})
    return _link_page(request, 410, {"problem": "used"})


@csrf_exempt  # the single-use token in the path is the proof; it works on devices without our cookies
def answer_link(request, token: str):
    """GET shows the alarm (mail scanners fetch links: no change on GET); POST answers, once."""
    if request.method not in ("GET", "HEAD", "POST"):
        return _link_page(request, 405, {"problem": "unknown"})
    recipient = links.check_token(token)
    if recipient is None or not (recipient.membership.is_active and recipient.membership.user.is_active):
        return _dead_link(request, token)
    alarm = Alarm.objects.select_related("scenario", "level", "site").get(pk=recipient.alarm_id)
    context = {**alarm_context(alarm, recipient.membership.role), "recipient": recipient, "token": token,
               "statuses": Status.choices if evacuation_status.is_evacuating(alarm) else None}
    if request.method != "POST":
        return _link_page(request, 200, context)
    if context["statuses"] and "status" in request.POST:
        return _status_by_link(request, alarm, recipient, context)
    choice = request.POST.get("answer", "")
    if choice not in (AlarmRecipient.Answer.ACCEPTED, AlarmRecipient.Answer.DECLINED):
        return _link_page(request, 400, context)
    try:
        with transaction.atomic():
            if not links.use_token(recipient):
                return _dead_link(request, token)
            actions.answer_alarm(alarm=alarm, membership=recipient.membership, answer=choice, via="link")
    except ValidationError:
        return _link_page(request, 410, {**context, "problem": "ended"})
    return _link_page(request, 200, {**context, "answered": choice})


def _status_by_link(request, alarm: Alarm, recipient: AlarmRecipient, context: dict) -> HttpResponse:
    """An evacuation's status (safe, need help, not on site) by the one-time link, instead of an answer."""
    choice = request.POST.get("status", "")
    if choice not in Status.values:
        return _link_page(request, 400, context)
    try:
        with transaction.atomic():
            if not links.use_token(recipient):
                return _dead_link(request, token=context["token"])
            evacuation_status.report_status(alarm=alarm, person=recipient.membership, status=choice,
                                            reporter=evacuation_status.Reporter(recipient.membership),
                                            via=Source.LINK)
    except ValidationError:
        return _link_page(request, 410, {**context, "problem": "ended"})
    return _link_page(request, 200, {**context, "reported": dict(Status.choices)[choice]})


# Cockpit -------------------------------------------------------------------------------------------

def _event_text(event: AlarmEvent) -> str:
    data = event.data or {}
    if event.kind == AlarmEvent.Kind.TRIGGERED:
        return _("%(people)s people alerted, %(messages)s messages queued") % {
            "people": data.get("recipients", 0), "messages": data.get("deliveries", 0)}
    if event.kind == AlarmEvent.Kind.LEVEL_RAISED:
        text = f"{data.get('from', '')} → {data.get('to', '')}"
        return text + (" · " + _("by the escalation rule") if data.get("escalated") else "")
    if event.kind == AlarmEvent.Kind.ESCALATED:
        return _("%(accepted)s of %(needed)s needed accepted in time") % {
            "accepted": data.get("accepted", 0), "needed": data.get("needed", 0)}
    if event.kind == AlarmEvent.Kind.UPDATED:
        names = {"note": _("extra information"), "location": _("location")}
        return ", ".join(str(names.get(f, f)) for f in data.get("fields", []))
    if event.kind in (AlarmEvent.Kind.ACCEPTED, AlarmEvent.Kind.DECLINED):
        via = {"app": _("in the app"), "link": _("by link"), "push": _("from the notification")}
        return str(via.get(data.get("via"), data.get("via", "")))
    if event.kind == AlarmEvent.Kind.ENDED:
        return str(data.get("reason", ""))
    return ""


def _timeline(alarm: Alarm, names: bool) -> list[dict]:
    rows = []
    for event in alarm.events.select_related("actor").order_by("at", "pk"):
        actor = event.actor.display_name if names and event.actor else ""
        rows.append({"at": event.at, "kind": event.kind, "label": event.get_kind_display(), "actor": actor,
                     "text": _event_text(event)})
    return rows


def _waiting(alarm: Alarm) -> list[dict]:
    """Who has not answered (the first WAITING_LIST_LIMIT), by name, and whether they have a live session.

    Names are encrypted, so they are sorted here; the limit keeps a refresh cheap for a very large alarm.
    """
    rows = list(alarm.recipients.filter(answer="").select_related("membership").order_by("pk")[:WAITING_LIST_LIMIT])
    users = {r.membership.user_id for r in rows}
    online = set(UserSession.objects.filter(user_id__in=users, expire_date__gt=timezone.now())
                 .values_list("user_id", flat=True))
    people = [{"name": r.membership.display_name, "online": r.membership.user_id in online} for r in rows]
    return sorted(people, key=lambda p: p["name"].casefold())


def panel_context(request, alarm: Alarm) -> dict:
    counts = actions.counts(alarm)
    directory = Perm.VIEW_DIRECTORY in request.site_perms
    group_names = dict(Group.objects.for_site(request.site).filter(
        pk__in=[int(g) for g in counts["by_group"]]).values_list("pk", "name"))
    channel_names = dict(CHANNEL_CHOICES)
    waiting = _waiting(alarm) if directory else []
    context = alarm_context(alarm, None)
    context.update(
        counts=counts, directory=directory, waiting=waiting,
        waiting_more=max(0, counts["none"] - len(waiting)) if directory else 0,
        offline=sum(1 for p in waiting if not p["online"]),
        channels=[(kind, channel_names.get(kind, kind),
                   {**states, "waiting": states.get("pending", 0) + states.get("sending", 0)})
                  for kind, states in counts["by_channel"].items()],
        groups=[(gid, group_names.get(int(gid), "—"), row) for gid, row in counts["by_group"].items()],
        timeline=_timeline(alarm, directory), can_manage=Perm.MANAGE_ALARMS in request.site_perms,
        other_levels=alarm.scenario.levels.exclude(pk=alarm.level_id),
        update_form=UpdateAlarmForm(initial={"note": alarm.note, "location_text": alarm.location_text},
                                    auto_id=f"id_a{alarm.pk}_%s"),
        end_form=EndAlarmForm(auto_id=f"id_a{alarm.pk}_%s"),
        evacuation=rollcall.cockpit_view(alarm) if alarm.scenario.evacuates and alarm.is_active else None,
        roll_call=Perm.ROLL_CALL in request.site_perms)
    return context


def _other_cockpit_sites(request, sites=None) -> list:
    """The person's other sites where they are on the crisis team (``sites``: the person's sites to look at)."""
    sites = accessible_sites(request.user) if sites is None else sites
    return [site for site in sites.exclude(pk=request.site.pk) if has_perm(request.user, site, Perm.VIEW_COCKPIT)]


def _other_sites(request) -> list[dict]:
    return [{"site": site, "active": Alarm.objects.for_site(site).filter(state=Alarm.State.ACTIVE).count()}
            for site in _other_cockpit_sites(request)]


@require_GET
@site_permission_required(Perm.VIEW_COCKPIT)
def cockpit(request):
    alarms = Alarm.objects.for_site(request.site).filter(state=Alarm.State.ACTIVE).select_related(
        "scenario", "level", "site")
    recent = (Alarm.objects.for_site(request.site).filter(state=Alarm.State.ENDED)
              .select_related("scenario", "level").order_by("-ended_at")[:10])
    return render(request, "alarms/cockpit.html", {
        "panels": [panel_context(request, a) for a in alarms], "recent": recent,
        "other_sites": _other_sites(request), "site_zone": request.site.time_zone})


HISTORY_PAGE_SIZE = 25


def _history_sites(request) -> list:
    """The person's sites whose alarms they may look back on (the crisis team's), the current one first."""
    return [request.site, *_other_cockpit_sites(request, accessible_sites(request.user).order_by("name"))]


@require_GET
@site_permission_required(Perm.VIEW_COCKPIT)
def history(request):
    """Every alarm of a site, newest first, with filters (site, scenario, alarms or drills, dates, words)."""
    sites = _history_sites(request)
    by_pk = {str(s.pk): s for s in sites}
    site = by_pk.get(request.GET.get("site", ""), request.site)
    form = HistoryFilterForm(request.GET or None, sites=sites, site=site)
    alarms = Alarm.objects.for_site(site)
    if form.is_bound:
        if form.is_valid():
            alarms = _history_filtered(alarms, form.cleaned_data, ZoneInfo(site.time_zone))
        else:
            alarms = alarms.none()
    alarms = alarms.select_related("scenario", "level", "building", "zone").order_by("-started_at", "-pk")
    page = Paginator(alarms, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "alarms/history.html", {
        "form": form, "page": page, "query": query.urlencode(), "shown_site": site,
        "other_site": site.pk != request.site.pk, "site_zone": site.time_zone})


def _history_filtered(alarms, data: dict, zone: ZoneInfo):
    if data.get("scenario"):
        alarms = alarms.filter(scenario_id=data["scenario"])
    if data.get("kind"):
        alarms = alarms.filter(is_drill=data["kind"] == "drill")
    if data.get("since"):
        alarms = alarms.filter(started_at__gte=datetime.combine(data["since"], dt_time.min, zone))
    if data.get("until"):
        alarms = alarms.filter(started_at__lte=datetime.combine(data["until"], dt_time.max, zone))
    for word in (data.get("q") or "").split()[:5]:
        alarms = alarms.filter(Q(scenario__name__icontains=word) | Q(level__name__icontains=word)
                               | Q(location_text__icontains=word) | Q(end_reason__icontains=word))
    return alarms


@require_GET
@site_permission_required(Perm.VIEW_COCKPIT)
def cockpit_alarm(request, alarm_id: int):
    alarm = _alarm(request, alarm_id)
    return render(request, "alarms/cockpit_alarm.html", {"panel": panel_context(request, alarm),
                                                         "site_zone": request.site.time_zone})


@require_GET
@site_permission_required(Perm.VIEW_COCKPIT)
def cockpit_panel(request, alarm_id: int):
    """One alarm's panel as an HTML fragment, for the cockpit script to swap in."""
    alarm = _alarm(request, alarm_id)
    return render(request, "alarms/_panel.html", {"panel": panel_context(request, alarm)})


def _back_to_cockpit(request, alarm: Alarm):
    target = request.POST.get("next", "")
    if target == reverse("alarms:cockpit_alarm", args=[alarm.pk]):
        return redirect(target)
    return redirect("alarms:cockpit")


def _manage(request, alarm_id: int, change) -> HttpResponse:
    alarm = _alarm(request, alarm_id)
    try:
        text = change(alarm)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, text)
    return _back_to_cockpit(request, alarm)


@require_POST
@site_permission_required(Perm.MANAGE_ALARMS)
def alarm_update(request, alarm_id: int):
    def change(alarm):
        form = UpdateAlarmForm(request.POST)
        if not form.is_valid():
            raise ValidationError([e for errors in form.errors.values() for e in errors])
        actions.update_alarm(user=request.user, alarm=alarm, **form.cleaned_data)
        return _("The alarm was updated; recipients are told.")
    return _manage(request, alarm_id, change)


@require_POST
@site_permission_required(Perm.MANAGE_ALARMS)
def alarm_raise(request, alarm_id: int):
    def change(alarm):
        level_id = request.POST.get("level", "")
        level = Level.objects.for_site(request.site).filter(
            scenario_id=alarm.scenario_id, pk=int(level_id) if level_id.isdigit() else 0).first()
        if level is None:
            raise ValidationError(_("Choose a level of this scenario."))
        actions.raise_level(user=request.user, alarm=alarm, level=level)
        return _("The alarm is now at the level “%(level)s”.") % {"level": level.name}
    return _manage(request, alarm_id, change)


@require_POST
@site_permission_required(Perm.MANAGE_ALARMS)
def alarm_end(request, alarm_id: int):
    def change(alarm):
        actions.end_alarm(user=request.user, alarm=alarm, reason=request.POST.get("reason", "")[:600])
        return _("The alarm has ended; recipients get the all-clear.")
    return _manage(request, alarm_id, change)

