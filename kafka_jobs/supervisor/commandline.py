"""The command line that starts one worker process: the same program and options as the supervisor's.

Why a new interpreter (``subprocess``) rather than ``os.fork()``: a child starts with nothing of the
supervisor's state, so no Kafka client, thread, lock or database connection of the parent can be used
after the fork, whatever the project's settings, routes or installed apps created while loading. It costs
an interpreter and Django start-up per child (about a second), paid at start and at each restart only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection, Mapping
from typing import Any


def program(command: str, argv: list[str] | None = None) -> list[str]:
    """Return the interpreter and the program that ran this command (``manage.py``, ``-m django``...).

    When the command was not run from the command line (``call_command``), ``python -m django``, which
    finds the project by ``DJANGO_SETTINGS_MODULE`` from the same working directory.
    """
    argv = sys.argv if argv is None else argv
    interpreter = [sys.executable, *(f"-W{option}" for option in sys.warnoptions)]
    interpreter += [f"-X{name}" if value is True else f"-X{name}={value}" for name, value in sys._xoptions.items()]
    if len(argv) < 2 or argv[1] != command:
        return [*interpreter, "-m", "django"]
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name != "__main__":  # python -m django / -m some.module
        module = spec.parent if spec.name.endswith(".__main__") else spec.name
        return [*interpreter, "-m", module]
    return [*interpreter, argv[0]]


def option_arguments(parser: argparse.ArgumentParser, options: Mapping[str, Any], drop: Collection[str]) -> list[str]:
    """Return the options that parse back to ``options``: every one that differs from its default.

    Walks the parser's actions, as Django's ``call_command`` does, so options other apps add to the command
    are passed on too. ``drop`` names destinations left out.
    """
    arguments: list[str] = []
    for action in parser._actions:
        if not action.option_strings or action.dest in drop or action.dest not in options:
            continue
        value = options[action.dest]
        if value is None or value == action.default:
            continue
        flag = max(action.option_strings, key=len)
        if action.nargs == 0:  # store_true, store_const...
            if value == action.const:
                arguments.append(flag)
        elif isinstance(value, list | tuple):
            arguments += [flag, *map(str, value)]
        else:
            arguments += [flag, str(value)]
    return arguments
