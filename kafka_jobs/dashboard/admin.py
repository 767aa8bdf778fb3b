"""``DashboardAdmin``: the dashboard's pages as the admin URLs of the ``Dashboard`` model."""

from __future__ import annotations

from collections.abc import Callable
from functools import update_wrapper
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path

from .views import deadletters, fleet, schedules


class DashboardAdmin(admin.ModelAdmin):
    """Replaces the model's change list with the dashboard's pages (``admin:kafka_jobs_dashboard_<page>``).

    Every page needs ``view_dashboard`` (or ``change_dashboard``); actions need ``change_dashboard``. Nothing
    can be added or deleted: the model has no table.
    """

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def _page(self, view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        """Wrap ``view(request, model_admin, ...)``: staff login (admin_view) and the view permission."""

        def page(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not self.has_view_permission(request):
                raise PermissionDenied
            return view(request, self, *args, **kwargs)

        return self.admin_site.admin_view(update_wrapper(page, view))

    def get_urls(self) -> list[URLPattern]:
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("", self._page(fleet.overview), name=f"{name}_changelist"),
            path("overview/", self._page(fleet.overview), name=f"{name}_overview"),
            path("queues/", self._page(fleet.queues), name=f"{name}_queues"),
            path("queues/<str:queue>/pause/", self._page(fleet.queue_action), {"action": "pause"}, f"{name}_pause"),
            path("queues/<str:queue>/resume/", self._page(fleet.queue_action), {"action": "resume"}, f"{name}_resume"),
            path("workers/", self._page(fleet.workers), name=f"{name}_workers"),
            path("deadletters/", self._page(deadletters.index), name=f"{name}_deadletters"),
            path("deadletters/<str:topic>/", self._page(deadletters.topic), name=f"{name}_deadletters_topic"),
            path("deadletters/<str:topic>/replay/", self._page(deadletters.replay), name=f"{name}_deadletters_replay"),
            path(
                "deadletters/<str:topic>/<int:partition>/<int:offset>/",
                self._page(deadletters.letter),
                name=f"{name}_deadletters_letter",
            ),
            path("scheduled/", self._page(schedules.scheduled), name=f"{name}_scheduled"),
            path("recurring/", self._page(schedules.recurring), name=f"{name}_recurring"),
        ]
