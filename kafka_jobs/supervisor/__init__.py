"""``runkafkaworker --processes N``: a supervisor process and N worker processes of one consumer group.

``supervisor`` (the supervising loop) starts children with the command line of ``commandline`` and
restarts them by the rules of ``policy``; ``child`` is the worker-process side (log names, lifeline,
ready report).
"""

from .child import SupervisedChild
from .commandline import option_arguments, program
from .policy import RestartPolicy
from .supervisor import Supervisor, SupervisorGaveUp, available_cpus

__all__ = [
    "RestartPolicy",
    "SupervisedChild",
    "Supervisor",
    "SupervisorGaveUp",
    "available_cpus",
    "option_arguments",
    "program",
]
