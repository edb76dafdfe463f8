"""The access review page: the current review of the site, its entries to confirm or remove, past reviews."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from rallypoint.people import reviews
from rallypoint.people.models import AccessReview, AccessReviewEntry
from rallypoint.tenants.roles import SUPER_ADMIN, Perm, Role, role_label
from rallypoint.tenants.scoping import site_permission_required

#: Who comes first in the list: the most powerful roles.
_RANK = {SUPER_ADMIN: 0, Role.ADMIN: 1}


def _rows(review: AccessReview) -> list[dict]:
    entries = review.entries.select_related("membership__user")
    rows = [{"entry": e, "name": e.membership.full_name, "role": role_label(e.role),
             "support": e.membership.is_support} for e in entries]
    return sorted(rows, key=lambda r: (bool(r["entry"].decision), _RANK.get(r["entry"].role, 2),
                                       r["name"].casefold(), r["entry"].pk))


@require_http_methods(["GET", "POST"])
@site_permission_required(Perm.MANAGE_PEOPLE)
def access_review(request):
    site = request.site
    if request.method == "POST":  # start a review now, before the next one is due
        reviews.open_review(site, actor=request.user)
        messages.success(request, _("A new access review is open."))
        return redirect("people:access_review")
    found = list(AccessReview.objects.for_site(site)[:11])
    current = found[0] if found else None
    rows = _rows(current) if current else []
    return render(request, "people/access_review.html", {
        "review": current, "rows": rows, "past": found[1:], "review_days": settings.ACCESS_REVIEW_DAYS,
        "overdue": current is not None and current.is_overdue(),
        "open_count": sum(1 for r in rows if not r["entry"].decision)})


def _entry_for_request(request, review_id: int, entry_id: int) -> AccessReviewEntry:
    entry = (AccessReviewEntry.objects.for_site(request.site).select_related("review__site__organization",
                                                                             "membership__user")
             .filter(review_id=review_id, pk=entry_id).first())
    if entry is None:
        raise Http404
    return entry


@require_POST
@site_permission_required(Perm.MANAGE_PEOPLE)
def access_review_decide(request, review_id: int, entry_id: int):
    entry = _entry_for_request(request, review_id, entry_id)
    try:
        reviews.decide(actor=request.user, entry=entry, decision=request.POST.get("decision", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("people:access_review")


@require_POST
@site_permission_required(Perm.MANAGE_PEOPLE)
def access_review_confirm_rest(request, review_id: int):
    review = AccessReview.objects.for_site(request.site).select_related("site__organization").filter(
        pk=review_id).first()
    if review is None:
        raise Http404
    try:
        count = reviews.confirm_rest(actor=request.user, review=review)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Access confirmed for everyone left on the list (%(n)d).") % {"n": count})
    return redirect("people:access_review")
