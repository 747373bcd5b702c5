"""The root URLconf: the bank's API, and Django's error pages as JSON."""

from django.urls import include, path

urlpatterns = [
    path("", include("bank.urls")),
]

handler400 = "bank.api.bad_request"
handler403 = "bank.api.permission_denied"
handler404 = "bank.api.not_found"
handler500 = "bank.api.server_error"
