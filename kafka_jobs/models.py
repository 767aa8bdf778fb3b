"""The app's models module (Django looks here); each model lives with its feature."""

from .dashboard.models import Dashboard
from .outbox.models import OutboxMessage
from .tasks.models import TaskResultRecord

__all__ = ["Dashboard", "OutboxMessage", "TaskResultRecord"]
