"""App configuration of the example app."""

from django.apps import AppConfig


class ExampleConfig(AppConfig):
    """The example app (label ``example``)."""

    name = "testproject.example"
    label = "example"
    default_auto_field = "django.db.models.BigAutoField"
