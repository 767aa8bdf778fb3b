"""Django app configuration: discover job classes and register checks; nothing heavy."""

from django.apps import AppConfig


class KafkaJobsConfig(AppConfig):
    """The kafka_jobs app."""

    name = "kafka_jobs"
    verbose_name = "Kafka jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, registry

        checks.register()
        registry.autodiscover()
