from django.urls import path

from rallypoint.integrations import views

app_name = "integrations"

urlpatterns = [
    path("settings/api-keys/", views.api_key_list, name="api_keys"),
    path("settings/api-keys/new/", views.api_key_create, name="api_key_create"),
    path("settings/api-keys/<int:key_id>/", views.api_key_edit, name="api_key"),
    path("settings/api-keys/<int:key_id>/rotate/", views.api_key_rotate, name="api_key_rotate"),
    path("settings/api-keys/<int:key_id>/revoke/", views.api_key_revoke, name="api_key_revoke"),
]
