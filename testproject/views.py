"""The testproject's HTTP API: enqueue example jobs or tasks, count how many have run, read a task's result."""

from __future__ import annotations

import uuid

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from kafka_jobs import EnqueueError, perform_all_later
from kafka_jobs.tasks.compat import TaskResultDoesNotExist
from testproject.example.jobs.example_job import ExampleJob
from testproject.example.models import BATCH_MAX_LENGTH, JobRun
from testproject.example.tasks import example_task

MAX_COUNT = 10_000
KINDS = ("job", "task")


def _count(request: HttpRequest) -> int | None:
    raw = request.GET.get("count", "1")
    try:
        count = int(raw)
    except ValueError:
        return None
    return count if 1 <= count <= MAX_COUNT else None


@csrf_exempt  # a JSON API for scripts and the demo; there is no session to protect
@require_http_methods(["GET", "POST"])
def jobs(request: HttpRequest) -> JsonResponse:
    """``POST /jobs/?count=N&batch=B[&kind=task]`` enqueues N ExampleJobs (or example_tasks, with
    ``kind=task``); ``GET /jobs/?batch=B`` counts finished ones of either kind.

    ``batch`` tags the jobs so a caller can count its own (default: a new random tag). ``fail=1`` makes the
    jobs fail: retried twice, then dead-lettered (see the dashboard's dead letters).
    """
    if request.method == "GET":
        runs = JobRun.objects.all()
        batch = request.GET.get("batch")
        if batch:
            runs = runs.filter(batch=batch)
        return JsonResponse({"batch": batch, "done": runs.count()})

    count = _count(request)
    if count is None:
        return JsonResponse(
            {"error": f"count must be a whole number from 1 to {MAX_COUNT}, got {request.GET.get('count')!r}."},
            status=400,
        )
    batch = request.GET.get("batch") or uuid.uuid4().hex
    if len(batch) > BATCH_MAX_LENGTH:
        return JsonResponse({"error": f"batch must be at most {BATCH_MAX_LENGTH} characters."}, status=400)
    kind = request.GET.get("kind", "job")
    if kind not in KINDS:
        return JsonResponse({"error": f"kind must be one of {', '.join(KINDS)}, got {kind!r}."}, status=400)
    if kind == "task":
        return _enqueue_tasks(batch, count)
    fail = request.GET.get("fail") in ("1", "true")
    batch_jobs = [
        ExampleJob(batch, number, fail=fail) if fail else ExampleJob(batch, number) for number in range(count)
    ]
    try:
        # One batch with the job's dispatch_many_method; a single job would use ExampleJob.perform_later(...).
        enqueued = perform_all_later(batch_jobs)
    except EnqueueError as exc:
        return JsonResponse({"error": str(exc)}, status=503)
    return JsonResponse(
        {"batch": batch, "enqueued": enqueued, "job_ids": [job.job_id for job in batch_jobs]}, status=202
    )


def _enqueue_tasks(batch: str, count: int) -> JsonResponse:
    """Enqueue ``count`` example_tasks, one ``enqueue()`` each (django.tasks has no batch enqueue).

    In one transaction: the READY result rows are written in one commit, and the messages are sent when
    it commits (``ENQUEUE_AFTER_COMMIT``), so a worker never runs a task whose row is not there yet.
    """
    try:
        with transaction.atomic():
            results = [example_task.enqueue(batch, number) for number in range(count)]
    except EnqueueError as exc:
        return JsonResponse({"error": str(exc)}, status=503)
    return JsonResponse({"batch": batch, "enqueued": len(results), "result_ids": [r.id for r in results]}, status=202)


@require_http_methods(["GET"])
def result(request: HttpRequest, result_id: str) -> JsonResponse:
    """``GET /results/<id>/``: the stored result of an example_task (status, attempts, return value)."""
    try:
        task_result = example_task.get_result(result_id)
    except TaskResultDoesNotExist:
        return JsonResponse({"error": f"No result {result_id!r}."}, status=404)
    return JsonResponse(
        {
            "id": task_result.id,
            "status": str(task_result.status),
            "attempts": task_result.attempts,
            "return_value": task_result.return_value if task_result.status == "SUCCESSFUL" else None,
            "worker_ids": task_result.worker_ids,
        }
    )
