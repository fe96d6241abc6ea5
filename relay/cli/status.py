"""`relay status`: the relay's health at a glance, read straight from Redis.

`gather` (relay/observability/status.py) reads it, `as_json` is the machine form
(`--json`), `render` the terminal one (rich).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from relay.observability.logs import escaped, printable
from relay.observability.status import Status, SubscriptionHealth, WorkerSeen, as_json, gather
from relay.store.client import Replication

__all__ = ["Status", "SubscriptionHealth", "WorkerSeen", "as_json", "gather", "render"]

_ERROR_TEXT: Final = 80  # characters of a receiver's answer shown in the table


# --- the terminal view ------------------------------------------------------------------


def render(status: Status, console: Console) -> None:
    """Print the status as three tables: queues, workers, subscriptions."""
    tables = (_queues_table(status), _redis_panel(status.redis), _workers_table(status))
    console.print(Group(*tables, _subs_table(status)))


def _queues_table(status: Status) -> Panel:
    q = status.queues
    table = Table.grid(padding=(0, 3))
    rows = [
        ("outbox", q.outbox, "recorded events waiting for fan-out"),
        ("due", q.due, "deliveries still to deliver (pending, retrying, in flight)"),
        ("ready", q.ready, "of those, due now: a growing number means workers lag"),
        ("claims", q.claims, "deliveries a worker is attempting"),
        ("waiting", q.waiting, "deliveries held back: at the cap or rate, paused, circuit open"),
        ("dead", q.dead, "dead letters (per subscription below)"),
    ]
    for name, value, text in rows:
        style = "red" if name == "dead" and value else ""
        table.add_row(Text(name, style="bold"), Text(str(value), style=style), Text(text, "dim"))
    return Panel(table, title=f"queues at {_clock(status.at)}", title_align="left")


def _redis_panel(redis: Replication) -> Panel:
    replicas = ", ".join(
        f"{address} ({lag} bytes behind)"
        for address, lag in zip(redis.replicas, redis.lag_bytes, strict=True)
    )
    lines = [Text(f"{redis.role}; replicas: {replicas or 'none connected'}")]
    if redis.required:
        needed = f"writes wait for {redis.required} (RELAY_REDIS_MIN_REPLICAS)"
        if redis.short:
            lines.append(Text(f"{needed}: {redis.short} missing, writes answer 503", "red"))
        else:
            lines.append(Text(needed, "dim"))
    return Panel(Group(*lines), title="redis", title_align="left")


def _workers_table(status: Status) -> Panel:
    if not status.workers:
        return Panel(Text("no worker has sent a heartbeat", "red"), title="workers")
    table = Table.grid(padding=(0, 3))
    for worker in status.workers:
        state = Text("alive", "green") if worker.alive else Text("silent", "red")
        ago = _ago(status.at - worker.last_seen)
        table.add_row(Text(worker.name, "bold"), state, Text(f"last heartbeat {ago}", "dim"))
    return Panel(table, title="workers", title_align="left")


def _subs_table(status: Status) -> Table:
    table = Table(title="subscriptions", title_justify="left", expand=True)
    table.add_column("id", no_wrap=True)  # copied into `relay replay --subscription`
    # the state's words get the most room, the counts what their digits need
    table.add_column("name", overflow="fold", min_width=8)
    table.add_column("state", overflow="fold", ratio=3)
    for header in ("ok", "errors", "dead"):
        table.add_column(header, overflow="fold")
    table.add_column("last error", overflow="fold", ratio=2)
    for sub in status.subscriptions:
        table.add_row(
            sub.id,
            Text(escaped(sub.name)),  # a writer's: shown as text, its markup not obeyed
            _state(sub, status.at).append_text(_flow(sub)),
            str(sub.success_count),
            Text(str(sub.error_count), "yellow" if sub.error_count else ""),
            Text(str(sub.dead), "red" if sub.dead else ""),
            _last_error(sub, status.at),
        )
    if status.dead_unattributed:
        unattributed = str(status.dead_unattributed)
        table.add_row("-", "(deleted or expired)", "", "", "", unattributed, "")
    if not status.subscriptions:
        table.caption = "no subscriptions"
    return table


def _state(sub: SubscriptionHealth, now: int) -> Text:
    if not sub.on:
        return Text(f"off: {_clip(sub.disabled_reason)}" if sub.disabled_reason else "off", "red")
    parts = ["on", _circuit(sub, now), _pause(sub, now)]
    parts.append(f"{sub.waiting} waiting" if sub.waiting else "")
    if sub.failing_since is not None and not any(parts[1:]):
        parts.append("failing")
    text = ", ".join(part for part in parts if part)
    if sub.circuit is not None:
        return Text(text, "red")
    return Text(text, "green" if text == "on" else "yellow")


def _circuit(sub: SubscriptionHealth, now: int) -> str:
    if sub.circuit == "half-open":
        return "circuit open: probing"
    if sub.circuit is not None:
        return f"circuit open: next probe in {_span((sub.circuit_retry_at or now) - now)}"
    return ""


def _pause(sub: SubscriptionHealth, now: int) -> str:
    if sub.paused_until is None:
        return ""
    left = max(0, sub.paused_until - now)
    more = f"{left / 1000:.1f}s" if left < 60_000 else _span(left)
    return f"paused {more} more: {_clip(sub.paused_reason or 'by its receiver')}"


def _flow(sub: SubscriptionHealth) -> Text:
    """A second line: its requests in flight (against its own cap), its rate, and its
    ordering keys held; nothing for an idle subscription without limits of its own."""
    if not (sub.in_flight or sub.max_in_flight or sub.max_per_second or sub.held_keys):
        return Text()
    in_flight = f"{sub.in_flight}" + (f"/{sub.max_in_flight}" if sub.max_in_flight else "")
    parts = [f"{in_flight} in flight"]
    if sub.max_per_second is not None:
        rate = f"max {sub.max_per_second:g}/s"
        parts.append(f"{rate}: throttled" if sub.throttled else rate)
    if sub.held_keys:
        keys_ = "key" if sub.held_keys == 1 else "keys"
        parts.append(f"{sub.held_keys} {keys_} held, {sub.held_deliveries} behind")
    style = "yellow" if sub.throttled or sub.held_keys else "dim"
    return Text("\n" + ", ".join(parts), style)


def _last_error(sub: SubscriptionHealth, now: int) -> Text:
    if sub.last_error is None or sub.last_error_text is None:
        return Text()
    return Text(f"{_ago(now - sub.last_error)}: {_clip(sub.last_error_text)}")


def _clip(text: str) -> str:
    """A receiver's words as text for the table: at most _ERROR_TEXT characters (they must not
    swamp it), control characters escaped (they must not drive the terminal)."""
    return printable(text, limit=_ERROR_TEXT)


def _clock(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def _ago(ms: int) -> str:
    return f"{_span(ms)} ago"


def _span(ms: int) -> str:
    seconds = max(0, ms) / 1000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"
