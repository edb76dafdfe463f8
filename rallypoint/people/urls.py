from django.urls import path

from rallypoint.people import retention_views, review_views, views

app_name = "people"
urlpatterns = [
    path("people/", views.people_list, name="people"),
    path("people/new/", views.person_create, name="person_create"),
    path("people/import/", views.people_import, name="people_import"),
    path("people/export.csv", views.people_export, name="people_export"),
    path("people/export/<int:approval_id>.csv", views.people_export_approved, name="people_export_approved"),
    path("people/<int:membership_id>/", views.person_edit, name="person"),
    path("people/<int:membership_id>/activation/", views.person_activation, name="person_activation"),
    path("people/<int:membership_id>/invite/", views.person_invite, name="person_invite"),
    path("people/<int:membership_id>/delete/", views.person_delete, name="person_delete"),
    path("people/<int:membership_id>/data/", views.person_data_request, name="person_data_request"),
    path("people/<int:membership_id>/second-factor/reset/", views.person_second_factor_reset,
         name="person_second_factor_reset"),
    path("people/data/<int:approval_id>.json", views.person_data_approved, name="person_data_approved"),
    path("people/<int:membership_id>/sessions/end/", views.person_sessions_end, name="person_sessions_end"),
    path("people/review/", review_views.access_review, name="access_review"),
    path("retention/", retention_views.retention_page, name="retention"),
    path("people/review/<int:review_id>/confirm-rest/", review_views.access_review_confirm_rest,
         name="access_review_confirm_rest"),
    path("people/review/<int:review_id>/<int:entry_id>/", review_views.access_review_decide,
         name="access_review_decide"),
    path("groups/", views.group_list, name="groups"),
    path("groups/new/", views.group_create, name="group_create"),
    path("groups/<int:group_id>/", views.group_edit, name="group"),
    path("groups/<int:group_id>/delete/", views.group_delete, name="group_delete"),
]
