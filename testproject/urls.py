"""URLs of the testproject."""

from django.contrib import admin
from django.urls import path

from . import views

urlpatterns = [
    path("jobs/", views.jobs, name="jobs"),
    # The admin, with the kafka_jobs dashboard at /admin/kafka_jobs/dashboard/.
    path("admin/", admin.site.urls),
]
