"""Admin registrations of kafka_jobs (imported by ``admin.autodiscover()`` when django.contrib.admin is installed)."""

from django.contrib import admin

from .tasks.admin import TaskResultAdmin
from .tasks.models import TaskResultRecord

admin.site.register(TaskResultRecord, TaskResultAdmin)
