"""URLs of the test project."""

from django.urls import path

from tests import views

urlpatterns = [path("enqueue/", views.enqueue)]
