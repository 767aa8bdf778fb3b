"""Admin registrations of kafka_jobs (imported by ``admin.autodiscover()`` when django.contrib.admin is installed)."""

from django.contrib import admin

from .dashboard.admin import DashboardAdmin
from .dashboard.models import Dashboard
from .tasks.admin import TaskResultAdmin
from .tasks.models import TaskResultRecord

admin.site.register(Dashboard, DashboardAdmin)
admin.site.register(TaskResultRecord, TaskResultAdmin)
