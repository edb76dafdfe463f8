"""Pages to manage the sites of the organisation and its Super-admins. Thin: actions do the work.

The people and groups of a site have their pages in :mod:`rallypoint.people.views`."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rallypoint.accounts.models import User
from rallypoint.audit import approvals
from rallypoint.tenants import actions
from rallypoint.tenants.forms import SiteForm, SuperAdminForm
from rallypoint.tenants.models import SuperAdmin
from rallypoint.tenants.roles import SUPER_ADMIN, Perm
from rallypoint.tenants.scoping import (
    get_site_for_request,
    manageable_sites,
    site_permission_required,
)
from rallypoint.web.forms import add_validation_errors as _form_errors

# Sites and Super-admins -------------------------------------------------------------------------

@require_GET
@site_permission_required(Perm.MANAGE_SITE)
def site_list(request):
    context = {"sites": manageable_sites(request), "is_super_admin": request.site_role == SUPER_ADMIN}
    if context["is_super_admin"]:
        context["super_admins"] = (SuperAdmin.objects.filter(organization=request.site.organization)
                                   .select_related("user").order_by("pk"))
        context["super_admin_form"] = SuperAdminForm()
    return render(request, "tenants/site_list.html", context)


@require_http_methods(["GET", "POST"])
@site_permission_required(Perm.MANAGE_ORG_SITES)
def site_create(request):
    form = SiteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            actions.create_site(actor=request.user, organization=request.site.organization, **form.cleaned_data)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, _("Site created, with its support account."))
            return redirect("tenants:sites")
    return render(request, "tenants/site_form.html", {"form": form}, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@site_permission_required(Perm.MANAGE_SITE)
def site_edit(request, site_id: int):
    site = get_site_for_request(request, site_id)
    form = SiteForm(request.POST or None, initial={"name": site.name, "time_zone": site.time_zone})
    if request.method == "POST" and form.is_valid():
        try:
            actions.update_site(actor=request.user, site=site, **form.cleaned_data)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, _("Changes saved."))
            return redirect("tenants:sites")
    return render(request, "tenants/site_form.html", {"form": form, "site": site},
                  status=400 if form.errors else 200)


@require_POST
@site_permission_required(Perm.MANAGE_ORG_SITES)
def site_delete(request, site_id: int):
    site = get_site_for_request(request, site_id)
    if request.POST.get("confirm_name", "").strip() != site.name:
        messages.error(request, _("Type the site's name to confirm the deletion."))
        return redirect("tenants:site", site_id=site.pk)
    organization = site.organization
    try:
        if approvals.required(organization, approvals.Process.DELETE_SITE):
            if organization.sites.count() <= 1:
                raise ValidationError(_("The last site of an organisation cannot be deleted."))
            approvals.request(process=approvals.Process.DELETE_SITE, actor=request.user, organization=organization,
                              site=None, subject={"site": site.pk, "name": site.name})
            messages.success(request, _("A second Super-admin must approve the deletion. They have been told."))
            return redirect("audit:approvals")
        actions.delete_site(actor=request.user, site=site)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("tenants:site", site_id=site.pk)
    messages.success(request, _("Site deleted."))
    return redirect("web:home")


@require_POST
@site_permission_required(Perm.MANAGE_SUPER_ADMINS)
def super_admin_grant(request):
    form = SuperAdminForm(request.POST)
    organization = request.site.organization
    if form.is_valid():
        user = User.objects.by_email(form.cleaned_data["email"]).filter(
            memberships__site__organization=organization).distinct().first()
        try:
            if user is None:
                raise ValidationError(_("Only people of one of the organisation's sites can become "
                                        "Super-admins."))
            if approvals.required(organization, approvals.Process.GRANT_SUPER_ADMIN):
                approvals.request(process=approvals.Process.GRANT_SUPER_ADMIN, actor=request.user,
                                  organization=organization, site=None, subject={"user": user.pk})
                messages.success(request, _("A second Super-admin must approve the grant. They have been told."))
                return redirect("audit:approvals")
            actions.grant_super_admin(actor=request.user, organization=organization, user=user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Super-admin role granted."))
    else:
        messages.error(request, _("Enter a valid e-mail address."))
    return redirect("tenants:sites")


@require_POST
@site_permission_required(Perm.MANAGE_SUPER_ADMINS)
def super_admin_revoke(request, user_id: int):
    row = SuperAdmin.objects.filter(organization=request.site.organization, user_id=user_id).first()
    if row is None:
        return HttpResponse(status=404)
    try:
        actions.revoke_super_admin(actor=request.user, organization=request.site.organization, user=row.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Super-admin role revoked."))
    return redirect("tenants:sites")
