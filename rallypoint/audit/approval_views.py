"""Four-eyes requests: the page where a second administrator approves or refuses, and the requester follows
(or withdraws) their own. Thin: rallypoint.audit.approvals does the work."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from rallypoint.audit import approvals
from rallypoint.audit.models import Approval
from rallypoint.people.models import Membership
from rallypoint.tenants.roles import Perm
from rallypoint.tenants.scoping import site_permission_required

#: Decided requests shown below the open ones.
RECENT = 30


def _subject_names(rows: list[Approval]) -> dict[tuple, str]:
    """What each request concerns, in words: a person, an account (by one of its memberships), a site."""
    ids = {a.subject.get("membership") for a in rows if isinstance(a.subject.get("membership"), int)}
    names: dict[tuple, str] = {("membership", m.pk): m.display_name
                               for m in (Membership.records.filter(pk__in=ids) if ids else [])}
    users = {a.subject.get("user") for a in rows if isinstance(a.subject.get("user"), int)}
    for m in Membership.objects.filter(user_id__in=users).order_by("pk") if users else []:
        names.setdefault(("user", m.user_id), m.display_name)
    return names


def _subject_of(approval: Approval, names: dict) -> str:
    subject = approval.subject
    for kind in ("membership", "user"):
        if kind in subject:
            return names.get((kind, subject[kind]), "")
    return str(subject.get("name", ""))


def _download_url(approval: Approval) -> str:
    """Where the requester uses an approved one-time permission (an export)."""
    if approval.process == Approval.Process.EXPORT_PEOPLE:
        return reverse("people:people_export_approved", args=[approval.pk])
    if approval.process == Approval.Process.EXPORT_PERSON:
        return reverse("people:person_data_approved", args=[approval.pk])
    return ""


def _rows(request, queryset) -> list[dict]:
    rows = list(queryset.select_related("requested_by", "decided_by"))
    names = _subject_names(rows)
    requester_names = dict(Membership.objects.filter(site=request.site, user_id__in={
        a.requested_by_id for a in rows} | {a.decided_by_id for a in rows}).values_list("user_id", "pk"))
    people = {m.pk: m.display_name for m in Membership.records.filter(pk__in=requester_names.values())}
    result = []
    for a in rows:
        mine = a.requested_by_id == request.user.pk
        result.append({
            "approval": a, "mine": mine,
            "subject": _subject_of(a, names),
            "requested_by": people.get(requester_names.get(a.requested_by_id), _("a deleted account")),
            "decided_by": people.get(requester_names.get(a.decided_by_id), "") if a.decided_by_id else "",
            "may_decide": not mine and a.state == Approval.State.PENDING,
            "alone": mine and a.state == Approval.State.PENDING and not approvals.approvers(a),
            "download": _download_url(a) if mine and a.state == Approval.State.DONE and a.used_at is None else "",
        })
    return result


@require_GET
@site_permission_required(Perm.MANAGE_PEOPLE)
def approval_list(request):
    approvals.expire_due()
    site_rows = _visible(request)
    return render(request, "audit/approvals.html", {
        "open": _rows(request, site_rows.filter(state=Approval.State.PENDING).order_by("requested_at")),
        "decided": _rows(request, site_rows.exclude(state=Approval.State.PENDING)[:RECENT]),
        "hours": settings.APPROVAL_HOURS, "site_zone": request.site.time_zone,
        "processes": _process_choices(request) if Perm.MANAGE_SUPER_ADMINS in request.site_perms else None,
    })


def _visible(request):
    """This site's requests, and for a Super-admin the organisation's own (a retention change)."""
    mine = Q(site=request.site)
    if Perm.MANAGE_SUPER_ADMINS in request.site_perms:
        mine |= Q(site__isnull=True, organization_id=request.site.organization_id)
    return Approval.objects.filter(mine)


def _approval(request, approval_id: int) -> Approval:
    approval = _visible(request).filter(pk=approval_id).first()
    if approval is None:
        raise Http404
    return approval


def _refused(request, exc) -> None:
    if isinstance(exc, PermissionDenied) and exc.args:
        messages.error(request, str(exc.args[0]))
    elif isinstance(exc, PermissionDenied):
        messages.error(request, _("You may not decide this request."))
    else:
        messages.error(request, " ".join(exc.messages))


@require_POST
@site_permission_required(Perm.MANAGE_PEOPLE)
def approval_decide(request, approval_id: int):
    approval = _approval(request, approval_id)
    decision = request.POST.get("decision")
    if decision not in ("approve", "refuse"):
        messages.error(request, _("Choose approve or refuse."))
        return redirect("audit:approvals")
    try:
        approval = approvals.decide(approval=approval, approver=request.user, approve=decision == "approve",
                                    note=request.POST.get("note", ""))
    except (PermissionDenied, ValidationError) as exc:
        _refused(request, exc)
    else:
        if approval.state == Approval.State.DONE:
            messages.success(request, _("Approved and carried out."))
        elif approval.state == Approval.State.FAILED:
            messages.error(request, _("Approved, but it could not be carried out: %(why)s") % {"why": approval.result})
        else:
            messages.success(request, _("Refused. The request is closed."))
    return redirect("audit:approvals")


@require_POST
@site_permission_required(Perm.MANAGE_PEOPLE)
def approval_cancel(request, approval_id: int):
    try:
        approvals.cancel(approval=_approval(request, approval_id), actor=request.user)
    except (PermissionDenied, ValidationError) as exc:
        _refused(request, exc)
    else:
        messages.success(request, _("Request withdrawn."))
    return redirect("audit:approvals")


@require_POST
@site_permission_required(Perm.MANAGE_PEOPLE)
def approval_alone(request, approval_id: int):
    try:
        approval = approvals.carry_out_alone(approval=_approval(request, approval_id), actor=request.user)
    except (PermissionDenied, ValidationError) as exc:
        _refused(request, exc)
    else:
        if approval.state == Approval.State.DONE:
            messages.success(request, _("Carried out without a second person. The Art. 32 report lists it."))
        else:
            messages.error(request, _("It could not be carried out: %(why)s") % {"why": approval.result})
    return redirect("audit:approvals")


def _process_choices(request) -> list[dict]:
    chosen = approvals.organization_processes(request.site.organization)
    labels = dict(Approval.Process.choices)
    return [{"value": p, "label": labels[p], "checked": p in chosen, "fixed": p in approvals.ALWAYS}
            for p in approvals.PROCESSES]


@require_POST
@site_permission_required(Perm.MANAGE_SUPER_ADMINS)
def approval_processes(request):
    try:
        approvals.set_processes(organization=request.site.organization, processes=request.POST.getlist("process"),
                                actor=request.user)
    except (PermissionDenied, ValidationError) as exc:
        _refused(request, exc)
    else:
        messages.success(request, _("Changes saved."))
    return redirect("audit:approvals")
