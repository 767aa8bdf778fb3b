"""Dead letter pages: the DLQ topics, a page of one, one message, and replaying through ``kafkadlq``'s code."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.decorators.http import require_http_methods

from ...deadletter import DeadLetterTopic, ReplayResult, parse_offset, replay_dead_letters
from ...exceptions import ConfigurationError
from ...routing import Route, get_routes
from ..letters import (
    DEFAULT_PAGE_SIZE,
    Filters,
    LetterPage,
    LetterSource,
    PartitionSummary,
    read_letter,
    read_page,
    summarize,
)
from .base import BROKER_ERRORS, READ_TIMEOUT, back, render, require_change, url

if TYPE_CHECKING:
    from ..admin import DashboardAdmin

# Seconds a replay may take to read its messages (replaying everything reads the pending part of the topic).
REPLAY_TIMEOUT = 60.0


def open_topic(topic: str) -> LetterSource:
    """Open a DLQ topic for reading (replaced by a fake in unit tests)."""
    return DeadLetterTopic(topic, timeout=READ_TIMEOUT)


def _close(source: LetterSource) -> None:
    close = getattr(source, "close", None)
    if close is not None:
        close()


@contextlib.contextmanager
def _opened(topic: str) -> Iterator[LetterSource]:
    """Open a DLQ topic for reading; close it afterwards."""
    source = open_topic(topic)
    try:
        yield source
    finally:
        _close(source)


def dlq_routes() -> dict[str, Route]:
    """Return the routes that have a DLQ, by DLQ topic: only these topics are shown."""
    return {r.dead_letter_queue.topic: r for r in get_routes() if r.dead_letter_queue is not None}


def _route(topic: str) -> Route:
    route = dlq_routes().get(topic)
    if route is None:
        raise Http404(f"{topic!r} is not the dead letter queue of a routed queue.")
    return route


def index(request: HttpRequest, model_admin: DashboardAdmin) -> HttpResponse:
    """List the DLQ topics of the routes with their message and pending counts."""
    rows: list[dict[str, object]] = []
    error = ""
    for topic, route in sorted(dlq_routes().items()):
        row: dict[str, object] = {"topic": topic, "queue": route.queue, "url": url("deadletters_topic", topic)}
        rows.append(row)
        if error:
            continue
        try:
            source = open_topic(topic)
        except ConfigurationError as exc:  # not created yet
            row["missing"] = str(exc)
            continue
        except BROKER_ERRORS as exc:
            error = str(exc)
            continue
        try:
            summaries = summarize(source.bounds(), source.ledger())
        except BROKER_ERRORS as exc:
            error = str(exc)
            continue
        finally:
            _close(source)
        row["partitions"] = len(summaries)
        row["messages"] = sum(s.messages for s in summaries)
        row["pending"] = sum(s.pending for s in summaries)
    return render(request, model_admin, "deadletters.html", "deadletters", "Dead letters", rows=rows, error=error)


def _int(value: str | None, default: int | None, minimum: int = 0) -> int | None:
    try:
        return max(minimum, int(value)) if value not in (None, "") else default
    except ValueError:
        return default


def topic(request: HttpRequest, model_admin: DashboardAdmin, topic: str) -> HttpResponse:
    """One page of a DLQ partition, newest first, with filters and replay buttons."""
    route = _route(topic)
    query = request.GET
    partition = _int(query.get("partition"), 0) or 0
    before = _int(query.get("before"), None)
    size = _int(query.get("size"), DEFAULT_PAGE_SIZE, minimum=1) or DEFAULT_PAGE_SIZE
    filters = Filters.from_query(query)
    context: dict[str, object] = {"topic": topic, "route": route, "filters": filters, "partition": partition}
    try:
        with _opened(topic) as source:
            page = read_page(source, partition, before=before, size=size, filters=filters)
    except LookupError as exc:
        raise Http404(str(exc)) from exc
    except BROKER_ERRORS as exc:
        context["error"] = str(exc)
    else:
        context.update(page=page, links=_page_links(request, page))
    return render(request, model_admin, "deadletters_topic.html", "deadletters", f"Dead letters: {topic}", **context)


def _page_links(request: HttpRequest, page: LetterPage) -> dict[str, Any]:
    """Return the query strings of the newest, newer, older and per-partition pages (filters kept)."""

    def query(**changes: object) -> str:
        params = request.GET.copy()
        for key, value in changes.items():
            if value is None:
                params.pop(key, None)
            else:
                params[key] = str(value)
        return "?" + params.urlencode()

    links: dict[str, Any] = {"newest": query(before=None)}
    if page.older is not None:
        links["older"] = query(before=page.older)
    if page.newer is not None and not page.filters:
        links["newer"] = query(before=page.newer)
    links["partitions"] = [(s, query(partition=s.partition, before=None)) for s in page.summaries]
    return links


def letter(request: HttpRequest, model_admin: DashboardAdmin, topic: str, partition: int, offset: int) -> HttpResponse:
    """One DLQ message: its job, error, traceback, headers and payload, with a replay button."""
    route = _route(topic)
    context: dict[str, object] = {"topic": topic, "route": route, "partition": partition, "offset": offset}
    try:
        with _opened(topic) as source:
            found = read_letter(source, partition, offset)
    except BROKER_ERRORS as exc:
        context["error"] = str(exc)
    else:
        if found is None:
            raise Http404(f"No message at {partition}:{offset} in {topic!r}.")
        context["letter"] = found
        context["value_text"] = (found.value or b"").decode("utf-8", "replace")
        context["header_rows"] = [(k, v.decode("utf-8", "replace")) for k, v in found.headers]
    return render(
        request, model_admin, "deadletters_letter.html", "deadletters", f"{topic} {partition}:{offset}", **context
    )


@require_http_methods(["GET", "POST"])
def replay(request: HttpRequest, model_admin: DashboardAdmin, topic: str) -> HttpResponse:
    """Replay selected messages (POST ``offsets``), or every pending one (``all``: GET asks to confirm)."""
    require_change(request, model_admin)
    _route(topic)
    if request.method == "GET":
        return _confirm_all(request, model_admin, topic)
    topic_url = url("deadletters_topic", topic)
    everything = request.POST.get("all") == "1"
    again = request.POST.get("again")  # a replayed row's own button: that message, replayed again
    force = request.POST.get("force") == "1" or bool(again)
    offsets = None
    if not everything:
        try:
            one = again or request.POST.get("one")  # a row's own button: that message only, whatever is ticked
            offsets = [parse_offset(text) for text in ([one] if one else request.POST.getlist("offsets"))]
        except ValueError:
            messages.error(request, "Offsets are PARTITION:OFFSET (whole numbers >= 0). Nothing was replayed.")
            return HttpResponseRedirect(back(request, topic_url))
        if not offsets:
            messages.warning(request, "No messages selected: tick the messages to replay. Nothing was replayed.")
            return HttpResponseRedirect(back(request, topic_url))
    try:
        result = replay_dead_letters(topic, offsets=offsets, force=force, timeout=REPLAY_TIMEOUT)
    except BROKER_ERRORS as exc:
        messages.error(request, f"Replay failed: {exc}")
        return HttpResponseRedirect(back(request, topic_url))
    _record(request, model_admin, result, everything=everything, force=force)
    return HttpResponseRedirect(back(request, topic_url))


def _record(
    request: HttpRequest, model_admin: DashboardAdmin, result: ReplayResult, *, everything: bool, force: bool
) -> None:
    """Tell the operator what the replay did and record it in the admin log."""
    from ..models import Dashboard

    done = ", ".join(f"{d.partition}:{d.offset}" for d in result.replayed) or "none"
    text = f"Replayed {len(result.replayed)} message(s) of {result.topic} to their source topic ({done})"
    if everything:
        text = f"Replayed all pending messages of {result.topic}: {len(result.replayed)} message(s) ({done})"
    if force:
        text += ", forced"
    if result.passed_over:
        passed = ", ".join(f"{d.partition}:{d.offset}" for d in result.passed_over)
        text += f"; passed over {len(result.passed_over)} stub(s) with nothing to replay ({passed})"
    text += "."
    model_admin.log_change(request, Dashboard(name=f"dead letters {result.topic}"), text)
    messages.success(request, text)


def _confirm_all(request: HttpRequest, model_admin: DashboardAdmin, topic: str) -> HttpResponse:
    """Ask before replaying every pending message of ``topic``, saying how many there are."""
    context: dict[str, object] = {"topic": topic}
    try:
        with _opened(topic) as source:
            summaries: list[PartitionSummary] = summarize(source.bounds(), source.ledger())
    except BROKER_ERRORS as exc:
        context["error"] = str(exc)
    else:
        context["pending"] = sum(s.pending for s in summaries)
    return render(
        request, model_admin, "deadletters_replay_all.html", "deadletters", f"Replay all of {topic}?", **context
    )
