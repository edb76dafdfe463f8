"""The JSON API (django-ninja). OpenAPI description at ``/api/openapi.json``, interactive docs at ``/api/docs``.

Requests act in the caller's current site; the same actions and scoping helpers
as the web pages do the work, so the same rules apply.
"""

from __future__ import annotations

import json

from django.core.exceptions import PermissionDenied, RequestDataTooBig, ValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from ninja import Schema, Status
from ninja.errors import HttpError
from ninja.parser import Parser
from ninja.security import django_auth

from rallypoint.accounts import apptokens, mfa
from rallypoint.accounts.forms import PersonForm
from rallypoint.api.alarms import router as alarms_router
from rallypoint.api.auth import AppTokenAuth
from rallypoint.api.docs import DocumentedAPI, SwaggerPage
from rallypoint.api.evacuation import router as evacuation_router
from rallypoint.api.presence import router as presence_router
from rallypoint.lib.text import NotText, clean_data
from rallypoint.people import actions as people
from rallypoint.people.models import NOT_SUPPORT, Group, Membership
from rallypoint.tenants.roles import Perm, role_label
from rallypoint.tenants.scoping import check_request, get_group_for_request, get_membership_for_request


class CleanJsonParser(Parser):
    """JSON bodies with every string made safe to store (:mod:`rallypoint.lib.text`): control characters
    are stripped (a NUL from a fire panel must not make PostgreSQL refuse the alarm), and a lone surrogate
    is refused with 422 (see :func:`_unparsable`)."""

    def parse_body(self, request):
        return clean_data(json.loads(request.body))


api = DocumentedAPI(
    title="Rallypoint API",
    version="1",
    description="Alarm, evacuation and crisis management. A signed-in browser acts in its current site; "
                "an app token (Authorization: Bearer) in the site it was issued for. Any request may be "
                "answered 503 with Retry-After when too many requests arrive at the same moment (the "
                "database's write turn or a free connection did not come in time): nothing was saved, send "
                "it again after that many seconds. A request body is JSON (`Content-Type: application/json`; "
                "anything else is answered 415) of at most 1 MB (413); control characters in its texts are "
                "removed, and a text that is not valid Unicode (a lone surrogate such as \\ud800) is "
                "answered 422.",
    auth=[AppTokenAuth(), django_auth],
    urls_namespace="api",
    docs=SwaggerPage(),
    docs_url="/docs",
    parser=CleanJsonParser(),
)
api.add_router("/v1/", alarms_router)
api.add_router("/v1/", evacuation_router)
api.add_router("/v1/", presence_router)


@api.exception_handler(PermissionDenied)
def _forbidden(request, exc):
    return api.create_response(request, {"detail": _("You may not do this in this site.")}, status=403)


@api.exception_handler(HttpError)
def _unparsable(request, exc):
    if isinstance(exc.__cause__, NotText):  # django-ninja wraps what the parser raised
        detail = [{"type": "string_type", "loc": ["body"],
                   "msg": _("Text must be valid Unicode: the body holds a lone surrogate (such as \\ud800).")}]
        return api.create_response(request, {"detail": detail}, status=422)
    return api.create_response(request, {"detail": str(exc)}, status=exc.status_code)


@api.exception_handler(RequestDataTooBig)
def _too_large(request, exc):
    return api.create_response(request, {"detail": _("The request is too large.")}, status=413)


@api.exception_handler(ValidationError)
def _invalid(request, exc):
    detail = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
    return api.create_response(request, {"detail": detail}, status=400)


class ErrorOut(Schema):
    detail: str | dict


class SiteOut(Schema):
    id: int
    name: str
    organization: str
    time_zone: str
    role: str
    role_label: str
    permissions: list[str]


class PersonOut(Schema):
    id: int
    name: str
    role: str
    active: bool
    groups: list[int]
    email: str | None = None
    phone: str | None = None
    department: str | None = None


class PersonIn(Schema):
    name: str
    email: str
    phone: str = ""
    department: str = ""
    role: str = "employee"


class GroupOut(Schema):
    id: int
    name: str
    description: str
    members: list[int]


def _require_site(request) -> None:
    if request.site is None:
        raise PermissionDenied


def _person(request, membership: Membership) -> dict:
    out = {"id": membership.pk, "name": membership.full_name, "role": membership.role,
           "active": membership.is_active, "groups": sorted(g.pk for g in membership.groups.all())}
    if Perm.VIEW_PERSONAL_DATA in request.site_perms:
        out.update(email=membership.email, phone=membership.phone, department=membership.department)
    return out


@api.get("/v1/site", response={200: SiteOut, 401: ErrorOut, 403: ErrorOut}, tags=["sites"])
def current_site(request):
    """The site the caller works in now, their role and permissions there."""
    _require_site(request)
    site = request.site
    return {"id": site.pk, "name": site.name, "organization": site.organization.name,
            "time_zone": site.time_zone, "role": request.site_role, "role_label": role_label(request.site_role),
            "permissions": sorted(p.value for p in request.site_perms)}


@api.get("/v1/people", response={200: list[PersonOut], 401: ErrorOut, 403: ErrorOut}, tags=["people"])
def list_people(request):
    """People of the site. Contact data only for Administrators and Super-admins."""
    _require_site(request)
    check_request(request, Perm.VIEW_DIRECTORY)
    qs = Membership.objects.for_site(request.site).select_related("user").prefetch_related("groups")
    if Perm.VIEW_PERSONAL_DATA not in request.site_perms:
        qs = qs.active().filter(NOT_SUPPORT)
    return [_person(request, m) for m in qs.by_name()]


@api.get("/v1/people/{membership_id}", response={200: PersonOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut},
         tags=["people"])
def get_person(request, membership_id: int):
    _require_site(request)
    check_request(request, Perm.VIEW_DIRECTORY)
    membership = get_membership_for_request(request, membership_id)
    if Perm.VIEW_PERSONAL_DATA not in request.site_perms and (
            not membership.is_active or membership.is_support):
        raise Http404  # the same people as in the list
    return _person(request, membership)


@api.post("/v1/people", response={201: PersonOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut}, tags=["people"])
def create_person(request, payload: PersonIn):
    """Add a person to the site (no invitation is sent)."""
    _require_site(request)
    check_request(request, Perm.MANAGE_PEOPLE)
    form = PersonForm({"full_name": payload.name, "email": payload.email, "phone": payload.phone,
                       "department": payload.department, "role": payload.role})
    if not form.is_valid():
        return Status(400, {"detail": form.errors.get_json_data()})
    membership = people.create_person(actor=request.user, site=request.site, data=form.cleaned_data)
    return Status(201, _person(request, membership))


class AppTokenIn(Schema):
    name: str


class AppTokenOut(Schema):
    id: int
    name: str
    token: str


@api.post("/v1/app-tokens", response={201: AppTokenOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut},
          auth=django_auth, tags=["sign-in"])
def issue_app_token(request, payload: AppTokenIn):
    """Issue an app token for this device in the current site. The token is shown only in this answer."""
    _require_site(request)
    if not mfa.recently_authenticated(request):
        return Status(403, {"detail": _("Sign in again (or confirm it is you) to issue an app token.")})
    if not payload.name.strip():
        return Status(400, {"detail": {"name": [_("Name the device.")]}})
    row, token = apptokens.issue(user=request.user, site=request.site, name=payload.name, request=request)
    return Status(201, {"id": row.pk, "name": row.name, "token": token})


@api.get("/v1/groups", response={200: list[GroupOut], 401: ErrorOut, 403: ErrorOut}, tags=["groups"])
def list_groups(request):
    _require_site(request)
    check_request(request, Perm.VIEW_GROUPS)
    groups = Group.objects.for_site(request.site).prefetch_related("members")
    return [_group(g) for g in groups]


@api.get("/v1/groups/{group_id}", response={200: GroupOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut},
         tags=["groups"])
def get_group(request, group_id: int):
    _require_site(request)
    check_request(request, Perm.VIEW_GROUPS)
    return _group(get_group_for_request(request, group_id))


def _group(group: Group) -> dict:
    return {"id": group.pk, "name": group.name, "description": group.description,
            "members": sorted(m.pk for m in group.members.all())}
