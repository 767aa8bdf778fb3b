"""A view that enqueues a job, as an application would."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from tests.jobs import RecordJob
from tests.models import Widget
from tests.tasks import echo


@csrf_exempt
@require_POST
def enqueue(request: HttpRequest) -> JsonResponse:
    """Enqueue a RecordJob for the posted widget and return its id."""
    widget = Widget.objects.get(pk=request.POST["widget"])
    job = RecordJob.perform_later(request.POST["log"], request.POST["note"], widget=widget)
    return JsonResponse({"job_id": job.job_id})


@csrf_exempt
@require_POST
def enqueue_task(request: HttpRequest) -> JsonResponse:
    """Enqueue the ``echo`` task (django.tasks) with the posted note and return its result id."""
    result = echo.enqueue(request.POST["log"], request.POST["note"], via="view")
    return JsonResponse({"result_id": result.id, "status": str(result.status)})
