"""The contract's paths. Each view answers its own wrong methods with 405."""

from django.urls import path

from bank import views

urlpatterns = [
    path("health", views.health),
    path("ready", views.ready),
    path("accounts", views.open_account),
    path("accounts/<str:account_id>", views.get_account),
    path("accounts/<str:account_id>/deposit", views.deposit),
    path("accounts/<str:account_id>/withdraw", views.withdraw),
    path("accounts/<str:account_id>/transfer", views.transfer),
    path("accounts/<str:account_id>/transfers", views.request_transfer),
    path("accounts/<str:account_id>/overdraft-limit", views.set_overdraft_limit),
    path("accounts/<str:account_id>/close", views.close_account),
]
