from django.urls import path

from rallypoint.evacuation import structure_views as views

app_name = "structure"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("export.csv", views.structure_export, name="export"),
    path("import/", views.structure_import, name="import"),
    path("buildings/new/", views.building_create, name="building_create"),
    path("buildings/<int:building_id>/", views.building_edit, name="building"),
    path("buildings/<int:building_id>/delete/", views.building_delete, name="building_delete"),
    path("buildings/<int:building_id>/floors/new/", views.floor_create, name="floor_create"),
    path("floors/<int:floor_id>/", views.floor_page, name="floor"),
    path("floors/<int:floor_id>/edit/", views.floor_edit, name="floor_edit"),
    path("floors/<int:floor_id>/delete/", views.floor_delete, name="floor_delete"),
    path("floors/<int:floor_id>/plan", views.floor_plan, name="floor_plan"),
    path("floors/<int:floor_id>/plan/upload/", views.plan_upload, name="plan_upload"),
    path("floors/<int:floor_id>/plan/remove/", views.plan_remove, name="plan_remove"),
    path("floors/<int:floor_id>/markers/new/", views.marker_create, name="marker_create"),
    path("floors/<int:floor_id>/zones/new/", views.zone_create, name="zone_create"),
    path("markers/<int:marker_id>/", views.marker_edit, name="marker"),
    path("markers/<int:marker_id>/delete/", views.marker_delete, name="marker_delete"),
    path("zones/<int:zone_id>/", views.zone_edit, name="zone"),
    path("zones/<int:zone_id>/delete/", views.zone_delete, name="zone_delete"),
    path("zones/<int:zone_id>/rooms/new/", views.room_create, name="room_create"),
    path("rooms/<int:room_id>/", views.room_edit, name="room"),
    path("rooms/<int:room_id>/delete/", views.room_delete, name="room_delete"),
    path("assembly-points/new/", views.point_create, name="point_create"),
    path("assembly-points/<int:point_id>/", views.point_edit, name="point"),
    path("assembly-points/<int:point_id>/delete/", views.point_delete, name="point_delete"),
]
