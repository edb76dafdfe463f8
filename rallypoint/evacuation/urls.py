from django.urls import path

from rallypoint.evacuation import presence_views, views

app_name = "evacuation"

ALARM = "alarms/<int:alarm_id>/"

urlpatterns = [
    path(ALARM + "status/", views.my_status, name="my_status"),
    path(ALARM + "groups/", views.my_groups, name="groups"),
    path(ALARM + "zones/", views.zones, name="zones"),
    path(ALARM + "zones/<int:zone_id>/", views.zone_report, name="zone_report"),
    path(ALARM + "assembly/", views.assembly_points, name="assembly_points"),
    path(ALARM + "assembly/<int:point_id>/", views.roll_call, name="roll_call"),
    path(ALARM + "missing/", views.missing, name="missing"),
    path(ALARM + "handover/", views.handover_page, name="handover"),
    path(ALARM + "handover.pdf", views.handover_pdf, name="handover_pdf"),
    path("presence/", presence_views.here, name="here"),
    path("presence/entrance/<str:token>/", presence_views.entrance, name="entrance"),
    path("presence/posters/<int:building_id>/", presence_views.entrance_poster, name="entrance_poster"),
    path("visitors/", presence_views.visitors, name="visitors"),
    path("visitors/poster/", presence_views.visit_poster, name="visit_poster"),
    path("visit/<str:token>/", presence_views.visit, name="visit"),
]
