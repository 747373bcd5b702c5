from django.urls import path
from ledger import views

urlpatterns = [
    path("health", views.health),
    path("accounts", views.open_account),
    path("accounts/<str:account_id>", views.get_account),
    path("accounts/<str:account_id>/deposit", views.deposit),
]
