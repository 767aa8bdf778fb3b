"""``manage.py startjob``: the generated job imports, registers and runs; bad input is refused clearly."""

from __future__ import annotations

import importlib
import io
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import override_settings

from kafka_jobs import Job, registry
from kafka_jobs.management.commands.startjob import job_names

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Create an empty app with a unique name in ``tmp_path``, importable and installed for this test.

    Unique names matter: the job registry refuses a second, different class under an existing job name.
    """
    name = f"startjob_app_{uuid.uuid4().hex[:8]}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    with override_settings(INSTALLED_APPS=[*settings.INSTALLED_APPS, name]):
        yield name
    for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        del sys.modules[module]
    # Leave no generated job behind for tests that inspect the whole registry (no public unregister).
    for job_name in [n for n in registry.all_jobs() if n.startswith(f"{name}.")]:
        registry._jobs.pop(job_name, None)


def app_dir(app: str, tmp_path: Path) -> Path:
    return tmp_path / app


def startjob(*args: str) -> str:
    out = io.StringIO()
    call_command("startjob", *args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("name", ["Example", "ExampleJob", "example", "example_job"])
def test_name_forms_give_the_same_class_and_module(name: str) -> None:
    assert job_names(name) == ("ExampleJob", "example_job")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("send_invoice", ("SendInvoiceJob", "send_invoice_job")),
        ("SendInvoice", ("SendInvoiceJob", "send_invoice_job")),
        ("HTTPPing", ("HTTPPingJob", "http_ping_job")),
        ("report2", ("Report2Job", "report2_job")),
    ],
)
def test_names_convert_between_camel_and_snake_case(name: str, expected: tuple[str, str]) -> None:
    assert job_names(name) == expected


def test_generated_job_imports_registers_and_runs(app: str, tmp_path: Path) -> None:
    output = startjob("Example", "--app", app)

    target = app_dir(app, tmp_path) / "jobs" / "example_job.py"
    assert target.is_file()
    assert (app_dir(app, tmp_path) / "jobs" / "__init__.py").is_file()
    assert "example_job.py" in output
    module = importlib.import_module(f"{app}.jobs.example_job")
    job_class = module.ExampleJob
    assert issubclass(job_class, Job)
    assert job_class.queue_as == "default"
    assert registry.get(job_class.job_name) is job_class
    assert job_class.perform_now(1, "two", three=3) is None


def test_generated_job_passes_ruff_check_and_format(app: str, tmp_path: Path) -> None:
    pytest.importorskip("ruff")
    startjob("SendInvoice", "--app", app)
    target = app_dir(app, tmp_path) / "jobs" / "send_invoice_job.py"

    for command in (
        ["check", "--config", str(ROOT / "pyproject.toml")],
        ["format", "--check", "--config", str(ROOT / "pyproject.toml")],
        ["check", "--isolated"],  # ruff's defaults, as in a project without configuration
    ):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command, str(target)],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, f"ruff {' '.join(command)}:\n{result.stdout}{result.stderr}"


def test_queue_option_sets_queue_as_and_unrouted_queue_names_the_route_to_add(app: str) -> None:
    output = startjob("Report", "--app", app, "--queue", "reports")

    module = importlib.import_module(f"{app}.jobs.report_job")
    assert module.ReportJob.queue_as == "reports"
    assert "Queue 'reports' is not routed yet" in output
    assert 'active_job_topic("reports")' in output
    assert "tests.kafka_routes" in output


def test_routed_queue_prints_no_route_advice(app: str) -> None:
    output = startjob("Quiet", "--app", app, "--queue", "single")

    assert "not routed" not in output
    assert "active_job_topic" not in output


def test_missing_routes_module_says_how_to_create_it(app: str) -> None:
    with override_settings(KAFKA_JOBS={**settings.KAFKA_JOBS, "ROUTES": "no_such_routes_module"}):
        output = startjob("Lonely", "--app", app)

    assert "'no_such_routes_module', which does not exist" in output
    assert "no_such_routes_module.py" in output
    assert "routes = [" in output
    assert 'active_job_topic("default")' in output
    assert importlib.import_module(f"{app}.jobs.lonely_job").LonelyJob.queue_as == "default"


def test_existing_file_is_not_overwritten(app: str, tmp_path: Path) -> None:
    startjob("Example", "--app", app)
    target = app_dir(app, tmp_path) / "jobs" / "example_job.py"
    target.write_text("# edited by hand\n")

    with pytest.raises(CommandError, match="already exists; startjob never overwrites"):
        startjob("ExampleJob", "--app", app)

    assert target.read_text() == "# edited by hand\n"


def test_existing_jobs_package_is_kept(app: str, tmp_path: Path) -> None:
    jobs = app_dir(app, tmp_path) / "jobs"
    jobs.mkdir()
    (jobs / "__init__.py").write_text("MARKER = 1\n")

    output = startjob("Example", "--app", app)

    assert (jobs / "__init__.py").read_text() == "MARKER = 1\n"
    assert "__init__.py" not in output
    assert (jobs / "example_job.py").is_file()


def test_jobs_module_blocks_a_jobs_package(app: str, tmp_path: Path) -> None:
    (app_dir(app, tmp_path) / "jobs.py").write_text("")

    with pytest.raises(CommandError, match=r"jobs\.py exists, so .*\.jobs is a module"):
        startjob("Example", "--app", app)

    assert not (app_dir(app, tmp_path) / "jobs").exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("1abc", "is not a valid job name: use a Python identifier in CamelCase or snake_case"),
        ("foo-bar", "is not a valid job name"),
        ("_private", "is not a valid job name"),
        ("class", "is a Python keyword"),
        ("Job", "alone does not say what the job does"),
    ],
)
def test_invalid_names_are_refused_and_write_nothing(app: str, tmp_path: Path, name: str, message: str) -> None:
    with pytest.raises(CommandError, match=message):
        startjob(name, "--app", app)

    assert not (app_dir(app, tmp_path) / "jobs").exists()


def test_invalid_queue_is_refused(app: str) -> None:
    with pytest.raises(CommandError, match=r"not a valid queue name: use 1-200 characters from \[A-Za-z0-9._-\]"):
        startjob("Example", "--app", app, "--queue", "no spaces")


def test_unknown_app_is_refused_with_the_choices(app: str) -> None:
    with pytest.raises(CommandError, match=rf"No installed app is called 'nope'.*--app.*{app}"):
        startjob("Example", "--app", "nope")


def test_django_and_library_apps_are_refused(app: str) -> None:
    with pytest.raises(CommandError, match=r"django\.contrib\.auth is not one of this project's apps"):
        startjob("Example", "--app", "auth")
    with pytest.raises(CommandError, match="kafka_jobs is not one of this project's apps"):
        startjob("Example", "--app", "kafka_jobs")


def test_app_defaults_to_the_only_project_app(app: str, tmp_path: Path) -> None:
    with override_settings(INSTALLED_APPS=["django.contrib.contenttypes", "kafka_jobs", app]):
        startjob("Defaulted")

    assert (app_dir(app, tmp_path) / "jobs" / "defaulted_job.py").is_file()


def test_several_project_apps_require_the_app_option(app: str) -> None:
    # tests.settings installs the "tests" app, and the fixture adds a second one.
    with pytest.raises(
        CommandError, match=rf"Several apps could hold the job \(.*tests.*{app}.*\); choose one with --app"
    ):
        startjob("Example")
