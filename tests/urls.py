"""URLs of the test project."""

from django.contrib import admin
from django.urls import path

from tests import views

urlpatterns = [path("enqueue/", views.enqueue), path("admin/", admin.site.urls)]
