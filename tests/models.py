"""A model for tests that pass model instances to jobs."""

from django.db import models


class Widget(models.Model):
    """Something a job can receive by reference."""

    name = models.CharField(max_length=100)

    class Meta:
        app_label = "tests"
