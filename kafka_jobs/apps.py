"""Django app configuration: connect receivers, register checks, discover job classes; nothing heavy."""

from django.apps import AppConfig


class KafkaJobsConfig(AppConfig):
    """The kafka_jobs app."""

    name = "kafka_jobs"
    verbose_name = "Kafka jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, registry, signal_handlers  # noqa: F401 - importing connects the receivers
        from .tasks import job  # noqa: F401 - registers TaskJob, which carries django.tasks tasks

        checks.register()
        registry.autodiscover()
