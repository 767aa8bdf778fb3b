"""What every dashboard view shares: the admin context, the section tabs, permissions and broker errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaException
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from ...exceptions import KafkaJobsError

if TYPE_CHECKING:
    from ..admin import DashboardAdmin

# Seconds a page waits for the broker before it shows an error box instead.
READ_TIMEOUT = 5.0
# Errors that mean "Kafka could not be read": shown in an error box, never a server error.
BROKER_ERRORS: tuple[type[Exception], ...] = (KafkaJobsError, KafkaException)

SECTIONS = [
    ("overview", "Overview"),
    ("queues", "Queues"),
    ("workers", "Workers"),
    ("deadletters", "Dead letters"),
    ("scheduled", "Scheduled"),
    ("recurring", "Recurring"),
]

View = Callable[..., HttpResponse]


def url(name: str, *args: object) -> str:
    """Return the URL of dashboard page ``name`` (``admin:kafka_jobs_dashboard_<name>``)."""
    return reverse(f"admin:kafka_jobs_dashboard_{name}", args=args)


def render(
    request: HttpRequest, model_admin: DashboardAdmin, template: str, section: str, title: str, **context: Any
) -> TemplateResponse:
    """Render a dashboard page with the admin's context (site header, sidebar, user links) and the tabs."""
    opts = model_admin.model._meta
    return TemplateResponse(
        request,
        f"kafka_jobs/dashboard/{template}",
        {
            **model_admin.admin_site.each_context(request),
            "opts": opts,
            "app_label": opts.app_label,
            "title": title,
            "section": section,
            "sections": [(name, label, url(name)) for name, label in SECTIONS],
            "can_change": model_admin.has_change_permission(request),
            **context,
        },
    )


def require_change(request: HttpRequest, model_admin: DashboardAdmin) -> None:
    """Raise ``PermissionDenied`` unless the user may act (``kafka_jobs.change_dashboard``)."""
    if not model_admin.has_change_permission(request):
        raise PermissionDenied


def back(request: HttpRequest, default: str) -> str:
    """Return the ``next`` URL posted with a form if it is on this site, else ``default``."""
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return default
