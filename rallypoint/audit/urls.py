from django.urls import path

from rallypoint.audit import views

app_name = "audit"
urlpatterns = [
    path("", views.audit_list, name="list"),
    path("verify/", views.verify_trail, name="verify"),
    path("security/", views.security_events, name="security"),
]
