"""A task's module path -> its ``Task`` object: the only way a message can name a task to run.

A message names its task by ``Task.module_path``. The path is resolved only if its module belongs to an
installed app (the module is imported, as Django imports an app's ``models``), and only if what it names
there is a ``django.tasks`` ``Task`` whose own path is that one. Anything else (``os.system``, a plain
function, a module outside the installed apps) raises ``UnknownTask``: the message is poison.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from django.apps import apps

from ..exceptions import UnknownTask

if TYPE_CHECKING:
    from .compat import Task

_RULE = "only django.tasks Task objects defined at module level in an installed app's modules run"


def installed_app_of(module_name: str) -> str | None:
    """Return the name of the installed app whose package holds ``module_name``, or None."""
    for config in apps.get_app_configs():
        if module_name == config.name or module_name.startswith(config.name + "."):
            return config.name
    return None


def split_path(path: object) -> tuple[str, str]:
    """Return ``(module, attribute)`` of a task path; raise ``UnknownTask`` if it cannot be one."""
    if not isinstance(path, str):
        raise UnknownTask(f"A task path must be a string, got {type(path).__name__}.")
    module_name, _, name = path.rpartition(".")
    if not module_name or not name.isidentifier() or not all(part.isidentifier() for part in module_name.split(".")):
        raise UnknownTask(f"{path[:200]!r} is not a task path (module.function).")
    return module_name, name


def resolve_task(path: object) -> Task:
    """Return the ``Task`` named by ``path``; raise ``UnknownTask`` (a ``DecodeError``) for anything else."""
    from .compat import Task

    module_name, name = split_path(path)
    if installed_app_of(module_name) is None:
        raise UnknownTask(f"{path!r} is not in an installed app's package: {_RULE}.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownTask(f"The module of task {path!r} cannot be imported: {exc}") from exc
    found = getattr(module, name, None)
    if not isinstance(found, Task):
        raise UnknownTask(f"{path!r} is a {type(found).__name__}, not a Task: {_RULE}.")
    if found.module_path != path:
        raise UnknownTask(f"{path!r} refers to the task {found.module_path!r} (an alias): {_RULE}.")
    return found
