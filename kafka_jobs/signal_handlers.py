"""Receivers of Django's own signals: keep what kafka_jobs caches in step with the settings.

Connected by ``AppConfig.ready()``. Living apart from ``conf.py`` lets the settings module stay at the
bottom of the import graph: it needs nothing from the backends or the routes it causes to be rebuilt.
"""

from __future__ import annotations

from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver

from . import activelocale, backends, conf, routing

SETTINGS = ("JOB_BACKEND", "KAFKA_JOBS")


@receiver(setting_changed, dispatch_uid="kafka_jobs.signal_handlers.reset_on_setting_changed")
def reset_on_setting_changed(*, setting: str, **_: Any) -> None:
    """Rebuild settings, backend and routes on next use when ``override_settings`` changes ours."""
    activelocale.forget()  # any setting (LANGUAGE_CODE, TIME_ZONE, USE_I18N...) may change the default answer
    if setting in SETTINGS:
        conf.get_settings.cache_clear()
        backends.reset()
        routing.reset()
