"""URLs of the testproject."""

from django.contrib import admin
from django.urls import path

from . import views

urlpatterns = [
    path("jobs/", views.jobs, name="jobs"),
    path("results/<str:result_id>/", views.result, name="result"),
    # The admin, with the kafka_jobs dashboard at /admin/kafka_jobs/dashboard/.
    path("admin/", admin.site.urls),
]
