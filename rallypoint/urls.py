from django.urls import include, path

from rallypoint.api.api import api
from rallypoint.ops import views as ops

urlpatterns = [
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("accounts/second-factor/", include("rallypoint.accounts.mfa_urls")),
    path("accounts/", include("rallypoint.accounts.urls")),
    path("audit/", include("rallypoint.audit.urls")),
    path("report/", include("rallypoint.ops.report_urls")),
    path("api/", api.urls),
    path("structure/", include("rallypoint.evacuation.structure_urls")),
    path("", include("rallypoint.alarms.urls")),
    path("", include("rallypoint.evacuation.urls")),
    path("", include("rallypoint.notify.urls")),
    path("", include("rallypoint.integrations.urls")),
    path("", include("rallypoint.people.urls")),
    path("", include("rallypoint.tenants.urls")),
    path("", include("rallypoint.web.urls")),
]

handler400 = "rallypoint.web.errors.bad_request"
handler403 = "rallypoint.web.errors.forbidden"
handler404 = "rallypoint.web.errors.not_found"
handler500 = "rallypoint.web.errors.server_error"
