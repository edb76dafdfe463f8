from django.urls import path

from rallypoint.notify import views

app_name = "notify"

urlpatterns = [
    path("push/subscriptions/", views.subscribe, name="push_subscribe"),
    path("push/subscriptions/remove/", views.unsubscribe, name="push_unsubscribe"),
    path("push/key", views.public_key, name="push_key"),
    path("sw.js", views.service_worker, name="service_worker"),
]
