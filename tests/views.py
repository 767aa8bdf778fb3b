"""A view that enqueues a job, as an application would."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from tests.jobs import RecordJob
from tests.models import Widget


@csrf_exempt
@require_POST
def enqueue(request: HttpRequest) -> JsonResponse:
    """Enqueue a RecordJob for the posted widget and return its id."""
    widget = Widget.objects.get(pk=request.POST["widget"])
    job = RecordJob.perform_later(request.POST["log"], request.POST["note"], widget=widget)
    return JsonResponse({"job_id": job.job_id})
