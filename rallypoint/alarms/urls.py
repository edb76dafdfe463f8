from django.urls import path

from rallypoint.alarms import display_views, views

app_name = "alarms"

SCENARIO = "scenarios/<int:scenario_id>/"

urlpatterns = [
    path("scenarios/", views.scenario_list, name="scenarios"),
    path("scenarios/new/", views.scenario_create, name="scenario_create"),
    path(SCENARIO, views.scenario_edit, name="scenario"),
    path(SCENARIO + "delete/", views.scenario_delete, name="scenario_delete"),
    path(SCENARIO + "levels/new/", views.level_create, name="level_create"),
    path(SCENARIO + "levels/<int:level_id>/", views.level_edit, name="level"),
    path(SCENARIO + "levels/<int:level_id>/delete/", views.level_delete, name="level_delete"),
    path(SCENARIO + "questions/new/", views.question_create, name="question_create"),
    path(SCENARIO + "questions/<int:question_id>/", views.question_edit, name="question"),
    path(SCENARIO + "questions/<int:question_id>/delete/", views.question_delete, name="question_delete"),
    path(SCENARIO + "documents/", views.document_upload, name="document_upload"),
    path(SCENARIO + "documents/<int:document_id>/", views.scenario_document, name="scenario_document"),
    path(SCENARIO + "documents/<int:document_id>/delete/", views.document_delete, name="document_delete"),
    path("instructions/", views.instructions, name="instructions"),
    path("instructions/documents/<int:document_id>/", views.instruction_document, name="instruction_document"),
    path("alarms/new/", views.trigger_start, name="new"),
    path("alarms/new/<int:scenario_id>/", views.trigger_details, name="new_details"),
    path("alarms/new/<int:scenario_id>/quick/", views.trigger_quick, name="quick"),
    path("alarms/<int:alarm_id>/", views.detail, name="detail"),
    path("alarms/<int:alarm_id>/answer/", views.answer, name="answer"),
    path("alarms/<int:alarm_id>/documents/<int:document_id>/", views.alarm_document, name="document"),
    path("answer/<str:token>", views.answer_link, name="answer_link"),
    path("display/<str:token>/", display_views.display, name="display"),
    path("cockpit/", views.cockpit, name="cockpit"),
    path("cockpit/history/", views.history, name="history"),
    path("cockpit/displays/", display_views.display_links, name="display_links"),
    path("cockpit/displays/<int:link_id>/revoke/", display_views.display_link_revoke, name="display_link_revoke"),
    path("cockpit/<int:alarm_id>/", views.cockpit_alarm, name="cockpit_alarm"),
    path("cockpit/<int:alarm_id>/panel", views.cockpit_panel, name="cockpit_panel"),
    path("cockpit/<int:alarm_id>/update/", views.alarm_update, name="alarm_update"),
    path("cockpit/<int:alarm_id>/raise/", views.alarm_raise, name="alarm_raise"),
    path("cockpit/<int:alarm_id>/end/", views.alarm_end, name="alarm_end"),
]
