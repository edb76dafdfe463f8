from django.urls import path

from rallypoint.tenants import views

app_name = "tenants"
urlpatterns = [
    path("sites/", views.site_list, name="sites"),
    path("sites/new/", views.site_create, name="site_create"),
    path("sites/<int:site_id>/", views.site_edit, name="site"),
    path("sites/<int:site_id>/delete/", views.site_delete, name="site_delete"),
    path("super-admins/", views.super_admin_grant, name="super_admin_grant"),
    path("super-admins/<int:user_id>/revoke/", views.super_admin_revoke, name="super_admin_revoke"),
]
