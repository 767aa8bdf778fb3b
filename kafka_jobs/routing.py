"""The ``kafka_routes.py`` DSL: which queues are Kafka topics of jobs, and how each is consumed.

A routes module defines ``routes = [active_job_topic("default", partitions=3), ...]``, as ``urls.py``
defines ``urlpatterns``. Job topics always use manual offset management (offsets move only past finished
jobs); there is no option to turn that off.
"""

from __future__ import annotations

import dataclasses
import importlib
import traceback
from collections.abc import Callable, Hashable, Iterable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from .conf import Backoff, get_settings
from .exceptions import ConfigurationError, UnroutedQueue
from .validators import QUEUE_NAME_RULE, int_at_least_rule, is_int_at_least, is_queue_name

# How a route retries a failed job: "pause" keeps it at the head of its partition (order kept, the partition
# waits); "delay" commits it and enqueues it again through the delay tiers (the partition keeps flowing).
RETRY_MODES = ("pause", "delay")

if TYPE_CHECKING:
    from .serializer import Envelope


@dataclasses.dataclass(frozen=True)
class DeadLetterQueue:
    """Where a job goes after ``max_retries`` retries (0: on the first failure)."""

    topic: str
    max_retries: int = 3

    def __post_init__(self) -> None:
        if not is_queue_name(self.topic):
            raise ConfigurationError(
                f"dead_letter_queue topic {self.topic!r} is not a valid topic name: use {QUEUE_NAME_RULE}."
            )
        _require_int("dead_letter_queue max_retries", self.max_retries, 0)


@dataclasses.dataclass(frozen=True)
class VirtualPartitions:
    """Run the jobs of one partition in parallel lanes chosen by ``key(envelope)``; equal keys stay in order.

    ``key`` receives the decoded ``Envelope`` (job name, id, JSON-encoded args and kwargs), not the job: the
    listener picks a lane without loading model arguments on its thread.
    """

    key: Callable[[Envelope], Hashable]
    max_lanes: int = 5

    def __post_init__(self) -> None:
        if not callable(self.key):
            raise ConfigurationError(f"virtual_partitions key must be callable, got {self.key!r}.")
        _require_int("virtual_partitions max_lanes", self.max_lanes, 1)


@dataclasses.dataclass(frozen=True)
class Route:
    """One job topic and how the worker consumes it."""

    queue: str
    partitions: int = 1
    replication_factor: int = 1
    config: Mapping[str, str] = dataclasses.field(default_factory=dict)
    backoff: Backoff | None = None
    dead_letter_queue: DeadLetterQueue | None = None
    virtual_partitions: VirtualPartitions | None = None
    topic: str = ""
    retry: str = "pause"

    def with_prefix(self, prefix: str) -> Route:
        """Return a copy whose topic (and DLQ topic) carry ``prefix``."""
        dlq = self.dead_letter_queue
        if dlq is not None:
            dlq = dataclasses.replace(dlq, topic=prefix + dlq.topic)
        return dataclasses.replace(self, topic=prefix + self.queue, dead_letter_queue=dlq)


def active_job_topic(
    queue: str,
    *,
    partitions: int = 1,
    replication_factor: int = 1,
    config: Mapping[str, str] | None = None,
    backoff: Backoff | Mapping[str, Any] | None = None,
    dead_letter_queue: DeadLetterQueue | Mapping[str, Any] | None = None,
    virtual_partitions: VirtualPartitions | Mapping[str, Any] | None = None,
    retry: str = "pause",
) -> Route:
    """Declare a topic of jobs named after ``queue`` (Karafka's ``active_job_topic``).

    Args:
        partitions: partition count used when the topic is created.
        backoff: per-route pause settings, ``Backoff(initial, maximum, exponential)`` or a dict of them.
        dead_letter_queue: ``DeadLetterQueue(topic, max_retries)`` or a dict of them.
        virtual_partitions: ``VirtualPartitions(key, max_lanes)`` or a dict of them.
        retry: ``"pause"`` (default): a failed job waits at the head of its partition, which waits with it
            (order kept); ``"delay"``: it is committed and enqueued again through the delay tiers, so its
            partition keeps flowing (jobs of one key may then run out of order).
    """
    where = f"active_job_topic({queue!r})"
    if not is_queue_name(queue):
        raise ConfigurationError(f"{where}: the queue name must be {QUEUE_NAME_RULE}.")
    if retry not in RETRY_MODES:
        raise ConfigurationError(f"{where}: retry must be one of {RETRY_MODES}, got {retry!r}.")
    try:
        _require_int("partitions", partitions, 1)
        _require_int("replication_factor", replication_factor, 1)
        return Route(
            queue=queue,
            partitions=partitions,
            replication_factor=replication_factor,
            config=dict(config or {}),
            backoff=_coerce(Backoff, backoff),
            dead_letter_queue=_coerce(DeadLetterQueue, dead_letter_queue),
            virtual_partitions=_coerce(VirtualPartitions, virtual_partitions),
            topic=queue,
            retry=retry,
        )
    except (ConfigurationError, TypeError) as exc:
        raise ConfigurationError(f"{where}: {exc}") from None


def _require_int(name: str, value: Any, minimum: int) -> None:
    if not is_int_at_least(value, minimum):
        raise ConfigurationError(f"{name} must be {int_at_least_rule(minimum)}, got {value!r}.")


def _coerce(kind: type, value: Any) -> Any:
    """Return ``value`` as a ``kind`` (a dataclass): as is, or built from a dict of its field names."""
    if value is None or isinstance(value, kind):
        return value
    if isinstance(value, Mapping):
        fields = [field.name for field in dataclasses.fields(kind)]
        unknown = set(value) - set(fields)
        if unknown:
            raise ConfigurationError(f"{kind.__name__} has no option(s) {sorted(unknown)}; use {fields}.")
        return kind(**value)
    raise ConfigurationError(f"expected {kind.__name__} or a dict, got {value!r}.")


class RouteTable:
    """The loaded routes, by queue and by topic, with the queue prefix applied."""

    def __init__(self, routes: Iterable[Route], prefix: str = "") -> None:
        self.prefix = prefix
        self.by_queue: dict[str, Route] = {}
        for route in routes:
            if not isinstance(route, Route):
                raise ConfigurationError(f"routes must contain active_job_topic(...) entries, got {route!r}.")
            if route.queue in self.by_queue:
                raise ConfigurationError(f"Queue {route.queue!r} is routed twice.")
            self.by_queue[route.queue] = route.with_prefix(prefix)
        self.by_topic = {route.topic: route for route in self.by_queue.values()}

    def __iter__(self) -> Any:
        return iter(self.by_queue.values())

    def __len__(self) -> int:
        return len(self.by_queue)

    def topic_for(self, queue: str, *, require_route: bool = True) -> str:
        """Return the topic for ``queue``; raise ``UnroutedQueue`` if it is not routed and must be."""
        route = self.by_queue.get(queue)
        if route is not None:
            return route.topic
        if require_route:
            raise UnroutedQueue(
                f"Queue {queue!r} is not declared in the routes module ({get_settings().routes}). Add "
                f"active_job_topic({queue!r}) to its routes, fix the job's queue_as, or set "
                "KAFKA_JOBS['REQUIRE_ROUTE'] = False to allow unrouted queues."
            )
        return self.prefix + queue

    def select(self, queues: Iterable[str]) -> list[Route]:
        """Return the routes for ``queues``; raise ``ConfigurationError`` naming any unknown queue."""
        wanted = list(queues)
        unknown = [q for q in wanted if q not in self.by_queue]
        if unknown:
            raise ConfigurationError(
                f"Queue(s) {unknown} are not routed; routed queues: {sorted(self.by_queue) or 'none'}."
            )
        return [self.by_queue[q] for q in wanted]


def load_routes(module_path: str, prefix: str = "") -> RouteTable:
    """Import ``module_path`` and build its route table."""
    try:
        module = importlib.import_module(module_path)
    except ModuleNotFoundError as exc:
        if exc.name and (module_path == exc.name or module_path.startswith(exc.name + ".")):
            raise ConfigurationError(
                f"KAFKA_JOBS['ROUTES'] names the module {module_path!r}, which does not exist. Create it with "
                "routes = [active_job_topic('default')] or point ROUTES at your routes module."
            ) from exc
        raise _import_failed(module_path, exc) from exc
    except Exception as exc:  # a syntax error or an exception in the user's module: say where, without a traceback
        raise _import_failed(module_path, exc) from exc
    routes = getattr(module, "routes", None)
    if not isinstance(routes, list | tuple):
        raise ConfigurationError(
            f"{module_path} must define routes = [active_job_topic(...), ...] (a list); found {routes!r}."
        )
    return RouteTable(routes, prefix)


def _import_failed(module_path: str, exc: BaseException) -> ConfigurationError:
    """Name the routes module, the error and the line that raised it (the last frame, or a syntax error's)."""
    where, text = "", str(exc)
    if isinstance(exc, SyntaxError) and exc.filename:
        where, text = f" ({exc.filename}, line {exc.lineno})", str(exc.msg)
    elif exc.__traceback__ is not None:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        where = f" ({frame.filename}, line {frame.lineno})"
    return ConfigurationError(
        f"KAFKA_JOBS['ROUTES'] module {module_path!r} failed to import: {type(exc).__name__}: {text}{where}. "
        "Fix that module."
    )


@cache
def get_routes() -> RouteTable:
    """Return the routes of ``KAFKA_JOBS['ROUTES']`` (cached until settings change)."""
    settings = get_settings()
    return load_routes(settings.routes, settings.queue_prefix)


def reset() -> None:
    """Forget the loaded routes (settings changed)."""
    get_routes.cache_clear()
