from django.urls import path

from rallypoint.ops import report_views

app_name = "report"
urlpatterns = [
    path("", report_views.report, name="report"),
    path("report.pdf", report_views.report_pdf, name="pdf"),
    path("declarations/", report_views.declarations, name="declarations"),
]
