from django.urls import path

from console.developers import views

urlpatterns = [
    path("", views.home, name="developers"),
    path("keys/", views.keys, name="developers-keys"),
    path("webhooks/", views.webhooks, name="developers-webhooks"),
    path("webhooks/<int:endpoint_id>/", views.endpoint_detail, name="developers-endpoint"),
    path(
        "webhooks/<int:endpoint_id>/<str:action>/",
        views.endpoint_action,
        name="developers-endpoint-action",
    ),
    path(
        "webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/",
        views.delivery_detail,
        name="developers-delivery",
    ),
    path(
        "webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/resend/",
        views.delivery_resend_view,
        name="developers-delivery-resend",
    ),
    path("inbox/", views.inbox, name="developers-inbox"),
    path("inbox/<int:inbox_id>/", views.inbox_detail, name="developers-inbox-event"),
    path("inbox/<int:inbox_id>/replay/", views.inbox_replay_view, name="developers-inbox-replay"),
    path("explorer/", views.explorer, name="developers-explorer"),
]
