from django.urls import path

from rallypoint.audit import approval_views, views

app_name = "audit"
urlpatterns = [
    path("", views.audit_list, name="list"),
    path("verify/", views.verify_trail, name="verify"),
    path("security/", views.security_events, name="security"),
    path("approvals/", approval_views.approval_list, name="approvals"),
    path("approvals/processes/", approval_views.approval_processes, name="approval_processes"),
    path("approvals/<int:approval_id>/decide/", approval_views.approval_decide, name="approval_decide"),
    path("approvals/<int:approval_id>/cancel/", approval_views.approval_cancel, name="approval_cancel"),
    path("approvals/<int:approval_id>/alone/", approval_views.approval_alone, name="approval_alone"),
]
