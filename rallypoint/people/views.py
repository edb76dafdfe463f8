"""Pages to manage the people and groups of the current site. Thin: actions do the work."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rallypoint.accounts.forms import ImportForm, NewPersonForm, PersonForm
from rallypoint.audit import approvals
from rallypoint.audit.models import Approval
from rallypoint.people import actions as people
from rallypoint.people import forget, subject_access
from rallypoint.people.forms import GroupForm
from rallypoint.people.models import NOT_SUPPORT, Group, Membership
from rallypoint.tenants.roles import Perm
from rallypoint.tenants.scoping import (
    get_group_for_request,
    get_membership_for_request,
    site_permission_required,
)
from rallypoint.web.forms import add_validation_errors as _form_errors

# People -----------------------------------------------------------------------------------------

@require_http_methods(["GET", "POST"])
@site_permission_required(Perm.VIEW_DIRECTORY)
def people_list(request):
    site = request.site
    if request.method == "POST":
        return _people_bulk(request)
    qs = (Membership.objects.for_site(site).people().select_related("user")
          .prefetch_related(Prefetch("groups", queryset=Group.objects.order_by("name"))))
    if Perm.VIEW_PERSONAL_DATA not in request.site_perms:
        qs = qs.active().filter(NOT_SUPPORT)
    people = sorted(qs, key=lambda m: (not m.is_active, m.full_name.casefold(), m.pk))
    page = Paginator(people, 200).get_page(request.GET.get("page"))
    # The same count as the home page's; the list may show more rows (deactivated people, support).
    counts = Membership.objects.for_site(site).headcount()
    return render(request, "people/people_list.html", {
        "page": page, "counts": counts,
        "export_needs_approval": approvals.required(site.organization, approvals.Process.EXPORT_PEOPLE),
        "open_approvals": Approval.objects.filter(site=site, state=Approval.State.PENDING,
                                                  expires_at__gt=timezone.now()).count()})


def _people_bulk(request):
    if Perm.MANAGE_PEOPLE not in request.site_perms:
        return HttpResponse(status=403)
    action = request.POST.get("action")
    if action not in {"deactivate", "activate"}:
        messages.error(request, _("Choose what to do with the selected people."))
        return redirect("people:people")
    ids = [int(v) for v in request.POST.getlist("selected") if v.isdigit()]
    chosen = list(Membership.objects.for_site(request.site).filter(pk__in=ids).select_related("user"))
    if not chosen:
        messages.error(request, _("Select at least one person."))
        return redirect("people:people")
    try:
        count = people.set_people_active(actor=request.user, site=request.site, memberships=chosen,
                                         active=action == "activate")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("%(count)d people changed.") % {"count": count})
    return redirect("people:people")


@require_http_methods(["GET", "POST"])
@site_permission_required(Perm.MANAGE_PEOPLE)
def person_create(request):
    form = NewPersonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            membership = people.create_person(actor=request.user, site=request.site, data=form.cleaned_data)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            if form.cleaned_data["invite"] and membership.user_id:
                people.invite_person(actor=request.user, membership=membership)
                messages.success(request, _("Person added. The invitation e-mail is on its way."))
            else:
                messages.success(request, _("Person added."))
            return redirect("people:person", membership_id=membership.pk)
    return render(request, "people/person_form.html", {"form": form, "creating": True},
                  status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@site_permission_required(Perm.MANAGE_PEOPLE)
def person_edit(request, membership_id: int):
    membership = get_membership_for_request(request, membership_id)
    initial = people.person_state(membership)
    form = PersonForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            people.update_person(actor=request.user, membership=membership, data=form.cleaned_data)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, _("Changes saved."))
            return redirect("people:person", membership_id=membership.pk)
    user = membership.user
    context = {"form": form, "membership": membership,
               "has_second_factor": user is not None and user.pk != request.user.pk and (
                   user.totp_devices.exists() or user.passkeys.exists()),
               "identity_editable": membership.user_id is None or people.identity_editable_by(membership.user,
                                                                                              request.site)}
    return render(request, "people/person_form.html", context, status=400 if form.errors else 200)


@require_POST
@site_permission_required(Perm.MANAGE_PEOPLE)
def person_activation(request, membership_id: int):
    membership = get_membership_for_request(request, membership_id)
    try:
        people.set_people_active(actor=request.user, site=request.site, memberships=[membership],
                                 active=not membership.is_active)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Person reactivated.") if membership.is_active
                         else _("Person deactivated."))
    return redirect("people:person", membership_id=membership.pk)


@require_POST
@site_permission_required(Perm.MANAGE_PEOPLE)
def person_invite(request, membership_id: int):
    membership = get_membership_for_request(request, membership_id)
    try:
        people.invite_person(actor=request.user, membership=membership)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("The invitation e-mail is on its way. A password link in it works once "
                                    "and for 24 hours."))
    return redirect("people:person", membership_id=membership.pk)


@require_POST
@site_permission_required(Perm.MANAGE_PEOPLE)
def person_sessions_end(request, membership_id: int):
    membership = get_membership_for_request(request, membership_id)
    count = people.end_person_sessions(actor=request.user, membership=membership)
    messages.success(request, _("Signed out on every device (%(count)d sessions).") % {"count": count})
    if membership.user_id == request.user.pk:
        return redirect("accounts:login")
    return redirect("people:person", membership_id=membership.pk)


@require_POST
@site_permission_required(Perm.MANAGE_PEOPLE)
def person_delete(request, membership_id: int):
    """The support account goes at once; anyone else after a second administrator approved (four-eyes)."""
    membership = get_membership_for_request(request, membership_id)
    try:
        if membership.is_support:
            people.delete_support_account(actor=request.user, membership=membership)
        else:
            approval = forget.request_deletion(actor=request.user, membership=membership,
                                               reason=request.POST.get("reason", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("people:person", membership_id=membership.pk)
    if membership.is_support:
        messages.success(request, _("The support account was deleted. It will not be re-created."))
    elif approval is not None:
        messages.success(request, _("A second administrator must approve the deletion. They have been told."))
        return redirect("audit:approvals")
    else:
        messages.success(request, _("The person was deleted."))
    return redirect("people:people")


@require_http_methods(["GET", "POST"])
@site_permission_required(Perm.MANAGE_PEOPLE)
def people_import(request):
    form = ImportForm(request.POST or None, request.FILES or None)
    errors, status = [], 200
    if request.method == "POST" and form.is_valid():
        try:
            text = form.cleaned_data["file"].read().decode("utf-8-sig")
        except UnicodeDecodeError:
            errors, status = [(0, _("The file is not UTF-8 encoded text. Save it as CSV (UTF-8) and try "
                                    "again."))], 400
        else:
            try:
                result = people.import_people(actor=request.user, site=request.site, text=text)
            except people.ImportErrors as exc:
                errors, status = exc.rows, 400
            else:
                messages.success(request, _("Import done: %(created)d added, %(updated)d updated, "
                                            "%(unchanged)d unchanged.") % result)
                return redirect("people:people")
    elif form.errors:
        status = 400
    return render(request, "people/people_import.html", {"form": form, "errors": errors}, status=status)


@require_http_methods(["GET", "POST"])
@site_permission_required(Perm.MANAGE_PEOPLE)
def people_export(request):
    """The people as CSV; under four eyes, a request first (POST) and the download after a second
    administrator's approval (:func:`people_export_approved`)."""
    if approvals.required(request.site.organization, approvals.Process.EXPORT_PEOPLE):
        if request.method != "POST":
            messages.error(request, _("Exporting the people needs a second administrator: ask for it with the "
                                      "button on the people page."))
            return redirect("audit:approvals")
        approvals.request(process=approvals.Process.EXPORT_PEOPLE, actor=request.user,
                          organization=request.site.organization, site=request.site, subject={})
        messages.success(request, _("A second administrator must approve the export. Once they have, download "
                                    "it here, once."))
        return redirect("audit:approvals")
    return _export(request)


@require_GET
@site_permission_required(Perm.MANAGE_PEOPLE)
def people_export_approved(request, approval_id: int):
    approval = _approval_of(request, approval_id, Approval.Process.EXPORT_PEOPLE)
    return _use_once(request, approval) or _export(request)


def _approval_of(request, approval_id: int, process: str) -> Approval:
    """This site's request of ``process``, or 404."""
    approval = Approval.objects.filter(pk=approval_id, site=request.site, process=process).first()
    if approval is None:
        raise Http404
    return approval


def _use_once(request, approval: Approval):
    """Use an approved one-time permission; a redirect to the approvals page, with why, when it cannot be."""
    try:
        approvals.use_once(approval=approval, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("audit:approvals")
    return None


def _export(request):
    text = people.export_people(actor=request.user, site=request.site)
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="people.csv"'
    return response


# Groups -----------------------------------------------------------------------------------------

@require_GET
@site_permission_required(Perm.VIEW_GROUPS)
def group_list(request):
    groups = Group.objects.for_site(request.site).prefetch_related(
        Prefetch("members", queryset=Membership.objects.active()))
    for group in groups:
        group.sorted_members = sorted(group.members.all(), key=lambda m: m.full_name.casefold())
    return render(request, "people/group_list.html", {"groups": groups})


def _save_group(request, group):
    initial = {}
    if group is not None:
        initial = {"name": group.name, "description": group.description, "members": group.members.all()}
    form = GroupForm(request.POST or None, initial=initial, site=request.site)
    if request.method == "POST" and form.is_valid():
        try:
            group = people.save_group(actor=request.user, site=request.site, group=group,
                                       **form.cleaned_data)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, _("Group saved."))
            return redirect("people:groups")
    return render(request, "people/group_form.html", {"form": form, "group": group},
                  status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@site_permission_required(Perm.MANAGE_GROUPS)
def group_create(request):
    return _save_group(request, None)


@require_http_methods(["GET", "POST"])
@site_permission_required(Perm.MANAGE_GROUPS)
def group_edit(request, group_id: int):
    return _save_group(request, get_group_for_request(request, group_id))


@require_POST
@site_permission_required(Perm.MANAGE_GROUPS)
def group_delete(request, group_id: int):
    people.delete_group(actor=request.user, group=get_group_for_request(request, group_id))
    messages.success(request, _("Group deleted."))
    return redirect("people:groups")


@require_POST
@site_permission_required(Perm.MANAGE_PEOPLE)
def person_data_request(request, membership_id: int):
    """An administrator produces a person's data for them (Art. 15), after a second administrator approved."""
    membership = get_membership_for_request(request, membership_id)
    organization = request.site.organization
    if not approvals.required(organization, approvals.Process.EXPORT_PERSON):
        return _person_data(membership)
    approvals.request(process=approvals.Process.EXPORT_PERSON, actor=request.user, organization=organization,
                      site=request.site, subject={"membership": membership.pk})
    messages.success(request, _("A second administrator must approve this. Once they have, download it here, "
                                "once."))
    return redirect("audit:approvals")


@require_GET
@site_permission_required(Perm.MANAGE_PEOPLE)
def person_data_approved(request, approval_id: int):
    approval = _approval_of(request, approval_id, Approval.Process.EXPORT_PERSON)
    membership = Membership.objects.filter(pk=approval.subject.get("membership"), site=request.site).first()
    if membership is None:
        raise Http404
    return _use_once(request, approval) or _person_data(membership)


def _person_data(membership: Membership) -> HttpResponse:
    """The person's data at this site (their membership, and their account's sign-in data)."""
    data = subject_access.collect(user=membership.user, memberships=[membership])
    response = HttpResponse(subject_access.as_json(data), content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="person-{membership.pk}-data.json"'
    return response


@require_POST
@site_permission_required(Perm.MANAGE_PEOPLE)
def person_second_factor_reset(request, membership_id: int):
    membership = get_membership_for_request(request, membership_id)
    try:
        approval = people.request_second_factor_reset(actor=request.user, membership=membership)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("people:person", membership_id=membership.pk)
    if approval is not None:
        messages.success(request, _("A second administrator must approve the reset. They have been told."))
        return redirect("audit:approvals")
    messages.success(request, _("The second factor was reset. The person sets a new one at their next sign-in."))
    return redirect("people:person", membership_id=membership.pk)
