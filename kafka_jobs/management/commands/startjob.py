"""``manage.py startjob NAME [--app APP] [--queue QUEUE]``: write a job class skeleton, like Rails' generator.

``startjob Example`` writes ``<app>/jobs/example_job.py`` with ``class ExampleJob(Job)`` (creating the
``jobs`` package), never overwrites a file, and says which route to add if the queue is not routed.
"""

from __future__ import annotations

import importlib.util
import keyword
import re
from pathlib import Path
from typing import Any

from django.apps import AppConfig, apps
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.template import Context, Engine

from kafka_jobs.conf import get_settings
from kafka_jobs.exceptions import KafkaJobsError
from kafka_jobs.management.argtypes import queue_name
from kafka_jobs.routing import get_routes

TEMPLATE = Path(__file__).resolve().parents[2] / "templates" / "kafka_jobs" / "job.py-tpl"
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# Word boundaries inside CamelCase: "SendInvoice" -> send_invoice, "HTTPPing" -> http_ping.
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NAME_HELP = (
    "use a Python identifier in CamelCase or snake_case that starts with a letter, e.g. SendInvoice or send_invoice"
)
_ROUTES_EXAMPLE = """from kafka_jobs.routing import active_job_topic

routes = [
    active_job_topic("{queue}"),
]"""


def job_names(name: str) -> tuple[str, str]:
    """Return ``(class name, module name)`` for ``name``: ``Example``, ``ExampleJob``, ``example`` and
    ``example_job`` all give ``("ExampleJob", "example_job")``.

    Raises:
        CommandError: ``name`` cannot name a job class.
    """
    if not NAME_RE.match(name):
        raise CommandError(f"{name!r} is not a valid job name: {_NAME_HELP}.")
    if keyword.iskeyword(name):
        raise CommandError(f"{name!r} is a Python keyword, not a valid job name: {_NAME_HELP}.")
    camel = "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)
    if camel == "Job":
        raise CommandError(
            f"{name!r} alone does not say what the job does; name it after its work, e.g. SendInvoice or send_invoice."
        )
    camel = camel.removesuffix("Job")
    snake = _CAMEL_BOUNDARY.sub("_", camel).lower()
    return f"{camel}Job", f"{snake}_job"


def is_project_app(config: AppConfig) -> bool:
    """True for apps of this project: not Django's, not kafka_jobs, not installed into site-packages."""
    if config.name == "kafka_jobs" or config.name.startswith("django."):
        return False
    parts = Path(config.path).resolve().parts
    return "site-packages" not in parts and "dist-packages" not in parts


def choose_app(requested: str | None) -> AppConfig:
    """Return the app to write the job into: ``--app`` (a label or dotted name), or the only project app."""
    project_apps = [config for config in apps.get_app_configs() if is_project_app(config)]
    choices = ", ".join(config.label for config in project_apps) or "none"
    if requested is None:
        if len(project_apps) == 1:
            return project_apps[0]
        if not project_apps:
            raise CommandError(
                "No app of this project is in INSTALLED_APPS to hold the job. Create one with "
                "'manage.py startapp NAME', add it to INSTALLED_APPS, then run startjob again."
            )
        raise CommandError(f"Several apps could hold the job ({choices}); choose one with --app.")
    config = next((c for c in apps.get_app_configs() if requested in (c.label, c.name)), None)
    if config is None:
        raise CommandError(
            f"No installed app is called {requested!r}. --app takes an app label or dotted name from "
            f"INSTALLED_APPS; this project's apps: {choices}."
        )
    if not is_project_app(config):
        raise CommandError(
            f"{config.name} is not one of this project's apps (it lives in {config.path}); write jobs into "
            f"your own apps: {choices}."
        )
    return config


def _display(path: Path) -> str:
    """Return ``path`` relative to the current directory when it is inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def routes_file(module: str) -> str:
    """Return where the routes module ``module`` would live (its package's directory, or the current one)."""
    parent, _, leaf = module.rpartition(".")
    if parent:
        try:
            spec = importlib.util.find_spec(parent)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.submodule_search_locations:
            return _display(Path(next(iter(spec.submodule_search_locations))) / f"{leaf}.py")
        return module.replace(".", "/") + ".py"
    return _display(Path.cwd() / f"{leaf}.py")


def routes_module_exists(module: str) -> bool:
    """True if ``module`` can be found (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


class Command(BaseCommand):
    help = (
        "Create <app>/jobs/<name>_job.py with a Job subclass skeleton. NAME is CamelCase or snake_case; "
        "'Example', 'ExampleJob' and 'example' all give ExampleJob in example_job.py."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="the job's name, e.g. SendInvoice or send_invoice")
        parser.add_argument(
            "--app", help="app label or dotted name from INSTALLED_APPS (default: the project's only app)"
        )
        parser.add_argument(
            "--queue", type=queue_name, default="default", help="the job's queue_as (default: %(default)s)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        class_name, module_name = job_names(options["name"])
        config = choose_app(options["app"])
        queue: str = options["queue"]
        app_dir = Path(config.path)
        jobs_dir = app_dir / "jobs"
        target = jobs_dir / f"{module_name}.py"
        if (app_dir / "jobs.py").exists():
            raise CommandError(
                f"{_display(app_dir / 'jobs.py')} exists, so {config.name}.jobs is a module and cannot hold "
                f"{module_name}.py. Move its contents to {_display(jobs_dir / '__init__.py')}, then run startjob "
                "again."
            )
        if target.exists():
            raise CommandError(
                f"{_display(target)} already exists; startjob never overwrites a file. Delete it or choose "
                "another name."
            )
        jobs_dir.mkdir(exist_ok=True)
        init = jobs_dir / "__init__.py"
        if not init.exists():
            init.write_text(
                f'"""Background jobs of the {config.label} app (discovered by kafka_jobs at start-up)."""\n'
            )
            self.stdout.write(f"Created {_display(init)}")
        source = Engine().from_string(TEMPLATE.read_text())
        context = Context({"class_name": class_name, "app_label": config.label, "queue": queue}, autoescape=False)
        with target.open("x") as fh:  # "x": never overwrite, even if the file appeared meanwhile
            fh.write(source.render(context))
        self.stdout.write(self.style.SUCCESS(f"Created {_display(target)} with class {class_name}."))
        self.stdout.write(f"Enqueue it with: from {config.name}.jobs.{module_name} import {class_name}")
        self.stdout.write(f"                 {class_name}.perform_later(...)")
        self._check_route(queue)

    def _check_route(self, queue: str) -> None:
        """Say which route to add when ``queue`` is not routed (enqueueing would fail with JOB_BACKEND "kafka")."""
        try:
            module = get_settings().routes
            if not routes_module_exists(module):
                self.stdout.write(
                    self.style.WARNING(
                        f"\nKAFKA_JOBS['ROUTES'] names the module {module!r}, which does not exist, so no queue "
                        f"is routed yet. Create {routes_file(module)} with:\n\n"
                        f"{_ROUTES_EXAMPLE.format(queue=queue)}\n\n"
                        "then create the topics with: manage.py kafkatopics create"
                    )
                )
                return
            routed = queue in get_routes().by_queue
        except KafkaJobsError as exc:
            self.stdout.write(
                self.style.WARNING(
                    f"\nCould not check the routes ({exc}). Once they load, make sure they contain "
                    f'active_job_topic("{queue}").'
                )
            )
            return
        if not routed:
            self.stdout.write(
                self.style.WARNING(
                    f"\nQueue {queue!r} is not routed yet, so enqueueing to it fails with JOB_BACKEND 'kafka'. "
                    f"Add this to routes in {module}:\n\n"
                    f'    active_job_topic("{queue}"),\n\n'
                    "then create its topic with: manage.py kafkatopics create"
                )
            )
