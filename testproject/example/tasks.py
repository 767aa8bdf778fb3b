"""The example task: ``ExampleJob``'s work as a django.tasks ``@task``, run by the same worker over Kafka."""

from __future__ import annotations

import django

from testproject.example.models import JobRun

if django.VERSION >= (6, 0):
    from django.tasks import TaskContext, task
else:  # Django 5.2: the django-tasks backport (pip install 'kafka-jobs[tasks]')
    from django_tasks import TaskContext, task


@task(takes_context=True)
def example_task(context: TaskContext, batch: str, number: int) -> int:
    """Record one run of task ``number`` of ``batch``, keyed by the result id; return the attempt.

    As for ``ExampleJob``: delivery is at least once, so a second run of the same task is a no-op.
    """
    JobRun.objects.get_or_create(job_id=context.task_result.id, defaults={"batch": batch, "number": number})
    return context.attempt
