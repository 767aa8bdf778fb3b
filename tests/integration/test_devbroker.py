"""The embedded development broker: the test fixture serves Kafka, and DevBroker leaves no process behind."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest
from confluent_kafka import Consumer, Message, Producer

from kafka_jobs import devbroker
from kafka_jobs.devbroker import DevBroker, DevBrokerError
from tests.helpers import create_topic, pid_exists, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def listening_socket() -> Iterator[socket.socket]:
    """A loopback socket that holds a port, as another program would."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock


def test_fixture_broker_round_trips_a_message_through_a_consumer_group(
    kafka_bootstrap: str, unique_topic: Callable[..., str]
) -> None:
    topic = unique_topic()
    create_topic(kafka_bootstrap, topic, partitions=3)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "acks": "all", "enable.idempotence": True})
    producer.produce(topic, key=b"k", value=b"hello", headers={"h": b"1"})
    assert producer.flush(10) == 0, "the message was not delivered"

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"g-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            # Tansu delays a group join by half the session timeout (see BROKER.md).
            "session.timeout.ms": 2000,
            "heartbeat.interval.ms": 500,
        }
    )
    try:
        consumer.subscribe([topic])
        received: list[Message] = []

        def got_message() -> bool:
            message = consumer.poll(0.2)
            if message is not None:
                assert message.error() is None, message.error()
                received.append(message)
            return bool(received)

        wait_for(got_message, timeout=30, message=f"no message came back from {topic}")
        (message,) = received
        assert (message.key(), message.value(), message.headers()) == (b"k", b"hello", [("h", b"1")])
        consumer.commit(message=message, asynchronous=False)
    finally:
        consumer.close()


def test_stop_ends_the_broker_process_and_is_idempotent(tmp_path: Path) -> None:
    broker = DevBroker(log_path=tmp_path / "tansu.log")
    broker.start()
    pid = broker.pid
    assert pid is not None and pid_exists(pid)
    host, port = broker.bootstrap_servers.split(":")
    assert host == "127.0.0.1"
    socket.create_connection((host, int(port)), timeout=5).close()

    broker.stop()
    broker.stop()

    assert not pid_exists(pid)
    assert broker.pid is None
    with pytest.raises(DevBrokerError, match="not started"):
        broker.bootstrap_servers  # noqa: B018


def test_context_manager_stops_the_broker_on_an_exception() -> None:
    pids: list[int | None] = []
    with pytest.raises(RuntimeError, match="boom"), DevBroker() as broker:
        pids.append(broker.pid)
        assert broker.is_running()
        raise RuntimeError("boom")
    (pid,) = pids
    assert pid is not None and not pid_exists(pid)


def test_start_retries_with_another_port_when_the_free_port_was_taken(
    listening_socket: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = listening_socket.getsockname()[1]
    ports = iter([taken, devbroker._free_port()])
    monkeypatch.setattr(devbroker, "_free_port", lambda: next(ports))

    with DevBroker() as broker:
        assert broker.port != taken
        assert broker.is_running()


def test_start_on_a_taken_port_fails_with_the_broker_log(listening_socket: socket.socket) -> None:
    taken = listening_socket.getsockname()[1]
    broker = DevBroker(port=taken)
    with pytest.raises(DevBrokerError, match=r"(?s)exited with status .*Address in use"):
        broker.start()
    assert broker.pid is None


def read_line(stream: IO[str], timeout: float) -> str:
    """Return the next line of a child's pipe, failing after ``timeout`` seconds instead of hanging."""
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, f"no output within {timeout:g} s"
    return stream.readline()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_command_line_prints_bootstrap_servers_and_stops_the_broker_on_a_signal(signum: int) -> None:
    command = subprocess.Popen(
        [sys.executable, "-m", "kafka_jobs.devbroker"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    broker_pid: int | None = None
    try:
        assert command.stdout is not None and command.stderr is not None
        line = read_line(command.stdout, timeout=30)
        assert line.startswith("KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:"), line
        port = int(line.strip().rsplit(":", 1)[1])
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        broker_pid = int(read_line(command.stderr, timeout=5).split()[2].rstrip(";"))

        command.send_signal(signum)

        assert command.wait(timeout=20) == 0
        assert not pid_exists(broker_pid)
    finally:
        if command.poll() is None:
            command.kill()
            command.wait(10)
        if broker_pid is not None and pid_exists(broker_pid):
            os.kill(broker_pid, signal.SIGKILL)  # orphaned by the failure above: never leave it running
        for stream in (command.stdout, command.stderr):
            if stream is not None:
                stream.close()
