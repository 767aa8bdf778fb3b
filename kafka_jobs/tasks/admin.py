"""The stored django.tasks results in the Django admin: read-only, searchable, deletable."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from .models import TaskResultRecord


class TaskResultAdmin(admin.ModelAdmin):
    """List and inspect task results; they are written by the enqueuer and the workers, never edited here."""

    list_display = ("id", "task_path", "status", "queue_name", "enqueued_at", "finished_at", "attempts")
    list_filter = ("status", "queue_name", "backend")
    search_fields = ("id", "task_path")
    date_hierarchy = "enqueued_at"
    ordering = ("-enqueued_at",)
    fields = (
        "id",
        "task_path",
        "status",
        "backend",
        "queue_name",
        "run_after",
        "enqueued_at",
        "started_at",
        "last_attempted_at",
        "finished_at",
        "pretty_args",
        "pretty_kwargs",
        "pretty_return_value",
        "error_list",
        "worker_ids",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="attempts")
    def attempts(self, obj: TaskResultRecord) -> int:
        return len(obj.worker_ids or [])

    @admin.display(description="args")
    def pretty_args(self, obj: TaskResultRecord) -> str:
        return _json(obj.args)

    @admin.display(description="kwargs")
    def pretty_kwargs(self, obj: TaskResultRecord) -> str:
        return _json(obj.kwargs)

    @admin.display(description="return value")
    def pretty_return_value(self, obj: TaskResultRecord) -> str:
        return _json(obj.return_value) if obj.status == "SUCCESSFUL" else "-"

    @admin.display(description="errors")
    def error_list(self, obj: TaskResultRecord) -> str:
        if not obj.errors:
            return "-"
        return format_html_join(
            "",
            "<p><strong>{}</strong></p><pre>{}</pre>",
            ((error.get("exception_class_path", "?"), error.get("traceback", "")) for error in obj.errors),
        )


def _json(value: Any) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False))
