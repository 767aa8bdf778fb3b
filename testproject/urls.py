"""URLs of the testproject."""

from django.urls import path

from . import views

urlpatterns = [
    path("jobs/", views.jobs, name="jobs"),
    path("results/<str:result_id>/", views.result, name="result"),
]
