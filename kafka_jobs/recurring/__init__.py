"""Recurring (cron) jobs: declared with ``recurring_job(...)`` in the routes module's ``recurring_jobs`` list.

Modules: ``declaration`` (``recurring_job`` and its validation), ``timing`` (when a schedule ticks), ``fires``
(the schedule topic's records and the missed-tick policy), ``loader`` (the declarations of the routes
module, checked), ``scheduler`` (the owner of the schedule topic fires the ticks).
"""

from .declaration import RecurringJob, recurring_job

__all__ = ["RecurringJob", "recurring_job"]
