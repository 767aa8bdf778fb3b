"""Overview, queues and workers pages (from the workers' reports), and pausing or resuming a queue."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.decorators.http import require_POST

from ...conf import get_settings
from ...ops import pause_queue, read_queue_commands, read_reports, resume_queue
from ...routing import get_routes
from ..fleet import Fleet, build_fleet
from .base import BROKER_ERRORS, READ_TIMEOUT, back, render, require_change, url

if TYPE_CHECKING:
    from ..admin import DashboardAdmin


def read_fleet() -> Fleet:
    """Read the latest reports and queue commands and join them with the routes (bounded reads)."""
    settings = get_settings()
    reports = read_reports(settings, timeout=READ_TIMEOUT)
    commands = read_queue_commands(settings, timeout=READ_TIMEOUT)
    return build_fleet(reports, get_routes(), commands)


def _page(request: HttpRequest, model_admin: DashboardAdmin, template: str, section: str, title: str) -> HttpResponse:
    context: dict[str, object] = {"interval": get_settings().report_interval}
    try:
        context["fleet"] = read_fleet()
    except BROKER_ERRORS as exc:
        context["error"] = str(exc)
    return render(request, model_admin, template, section, title, **context)


def overview(request: HttpRequest, model_admin: DashboardAdmin) -> HttpResponse:
    """Workers, throughput, total lag, failures and paused queues at a glance."""
    return _page(request, model_admin, "overview.html", "overview", "Kafka jobs dashboard")


def queues(request: HttpRequest, model_admin: DashboardAdmin) -> HttpResponse:
    """Each routed queue and partition: lag, paused/held/retrying, last error; pause and resume."""
    return _page(request, model_admin, "queues.html", "queues", "Queues")


def workers(request: HttpRequest, model_admin: DashboardAdmin) -> HttpResponse:
    """Each worker: its partitions, running jobs, counters and recent errors."""
    return _page(request, model_admin, "workers.html", "workers", "Workers")


@require_POST
def queue_action(request: HttpRequest, model_admin: DashboardAdmin, queue: str, action: str) -> HttpResponse:
    """Pause or resume ``queue``: a command on the commands topic, confirmed by the workers' next reports."""
    from ..models import Dashboard

    require_change(request, model_admin)
    if queue not in get_routes().by_queue:
        raise Http404(f"Queue {queue!r} is not routed.")
    send = {"pause": pause_queue, "resume": resume_queue}[action]
    try:
        command = send(queue, by=request.user.get_username())
    except BROKER_ERRORS as exc:
        messages.error(request, f"Could not {action} the queue {queue}: {exc}")
    else:
        verb = "Paused" if action == "pause" else "Resumed"
        text = f"{verb} the queue {queue} (command {command.id})."
        model_admin.log_change(request, Dashboard(name=f"queue {queue}"), text)
        messages.success(
            request,
            f"{text} Workers apply it and confirm in their next report (every {get_settings().report_interval:g}s)"
            + (": running jobs finish, no new job starts." if action == "pause" else "."),
        )
    return HttpResponseRedirect(back(request, url("queues")))
