"""The `relay` command: run the relay (all in one, or part by part) and administer it.

One function per command (`cmd_<name>`), each registered by `build_parser`; a command
returns the process's exit code. Exit codes: 0 done, 1 failed, 2 bad usage or setup.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console

from relay import __version__
from relay.api import server
from relay.cli import listen, replay_progress, status
from relay.cli.embedded_redis import data_dir_in_use
from relay.cli.supervisor import SupervisorError
from relay.cli.up import (
    BEAT_SCHEDULE_FILE,
    REDIS_URL_FILE,
    StackError,
    fresh_metrics_dir,
    run_up,
    warn_if_not_durable,
)
from relay.clock import now_ms, rfc3339_ms
from relay.deliveries.replay import replay
from relay.errors import ConflictError, InvalidRequestError, NotFoundError, RelayError
from relay.integrations.catalog import load_catalog
from relay.integrations.manifest import ManifestError
from relay.observability.logs import configure_logging, escaped, printable
from relay.observability.metrics import MULTIPROCESS_ENV
from relay.settings import Settings, parse_duration, settings_problems
from relay.store import sources, subscriptions, tokens
from relay.store.client import Redis, open_redis
from relay.store.tokens import Role

Command = Callable[[argparse.Namespace, Settings], int]

# used until workers.celery_app defines WORKER_ARGS
DEFAULT_WORKER_ARGS = ["worker", "--pool", "threads", "--concurrency", "16"]
# `relay sources add` reads the Unleash token here (argv is visible to every local user)
SOURCE_TOKEN_ENV = "RELAY_SOURCE_TOKEN"


class UsageError(Exception):
    """The command cannot run as invoked (exit code 2)."""


# --- running the relay ---------------------------------------------------------------


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    """Everything on one machine, supervised, until Ctrl-C."""
    configure_logging(settings.log_level, component="up")
    _check_integrations(settings)
    data_dir = args.data_dir or settings.data_dir
    try:
        run_up(settings, host=args.host, port=args.port, data_dir=data_dir)
    except StackError as exc:
        raise UsageError(str(exc)) from exc
    except SupervisorError as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """The API alone (uvicorn), against RELAY_REDIS_URL."""
    _require_redis(settings, "serve")
    configure_logging(settings.log_level, component="api")
    _check_integrations(settings)
    warn_if_not_durable(settings)
    if args.workers > 1 and not os.environ.get(MULTIPROCESS_ENV):
        # several API processes: each scrape must see all of them, through shared files
        os.environ[MULTIPROCESS_ENV] = str(fresh_metrics_dir(settings.data_dir))
    # uvicorn with relay's bounds on slow clients and connections (relay/api/server.py)
    server.serve(settings, host=args.host, port=args.port, workers=args.workers, fd=args.fd)
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """A Celery worker alone, against RELAY_REDIS_URL; extra arguments go to celery."""
    _require_redis(settings, "worker")
    configure_logging(settings.log_level, component="worker")
    _check_integrations(settings)
    warn_if_not_durable(settings)
    celery_app = _celery_app()
    # WORKER_ARGS is what follows `celery -A workers.celery_app`: `worker` and its options
    worker_args: list[str] = list(getattr(celery_app, "WORKER_ARGS", DEFAULT_WORKER_ARGS))
    if worker_args[:1] != ["worker"]:
        worker_args.insert(0, "worker")
    argv = ["--quiet", *worker_args, f"--loglevel={settings.log_level}", *args.celery_args]
    return _run_celery(celery_app.app, argv)


def cmd_beat(args: argparse.Namespace, settings: Settings) -> int:
    """The beat schedule alone (run exactly one per deployment), against RELAY_REDIS_URL."""
    _require_redis(settings, "beat")
    configure_logging(settings.log_level, component="beat")
    schedule: Path = args.schedule or settings.data_dir / BEAT_SCHEDULE_FILE
    schedule.parent.mkdir(parents=True, exist_ok=True)
    argv = ["--quiet", "beat", "--schedule", str(schedule), "--loglevel", settings.log_level]
    return _run_celery(_celery_app().app, argv)


def cmd_listen(args: argparse.Namespace, settings: Settings) -> int:
    """A local receiver printing each delivery to it, until Ctrl-C."""
    client = _admin_client(args, settings)
    try:
        listen.run_listen(
            client, settings, port=args.port, policies=args.subscribe or [], status=args.status
        )
    except listen.ListenError as exc:
        raise UsageError(str(exc)) from exc
    return 0


# --- administration --------------------------------------------------------------------


def cmd_token_create(args: argparse.Namespace, settings: Settings) -> int:
    """Print a new token's secret (stdout); it is stored hashed and never shown again."""
    info, secret = tokens.create_token(
        _admin_client(args, settings), name=args.name, role=Role(args.role)
    )
    print(secret)
    print(f"created {info.role} token {info.id} ({info.name}); keep it now", file=sys.stderr)
    return 0


def cmd_token_list(args: argparse.Namespace, settings: Settings) -> int:
    """List tokens: id, role, name, creation time (never a secret)."""
    rows = [
        [info.id, info.role.value, info.name, _iso(info.created_at)]
        for info in tokens.list_tokens(_admin_client(args, settings))
    ]
    _print_table(["ID", "ROLE", "NAME", "CREATED"], rows)
    return 0


def cmd_token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    """Revoke a token at once."""
    if not tokens.delete_token(_admin_client(args, settings), token_id=args.id):
        print(f"relay: no token {args.id}", file=sys.stderr)
        return 1
    print(f"revoked token {args.id}")
    return 0


def cmd_sources_add(args: argparse.Namespace, settings: Settings) -> int:
    """Add (or replace) an Unleash server to pull events from; its URL must pass the
    destination guard. The token comes from the environment or a prompt, never argv."""
    token = _source_token(args)
    client = _admin_client(args, settings)
    sources.add_source(client, name=args.name, url=args.url, token=token, settings=settings)
    print(f"added source {args.name} ({args.url})")
    return 0


def cmd_sources_list(args: argparse.Namespace, settings: Settings) -> int:
    """List pull sources (their tokens masked) and how their last pull went."""
    client = _admin_client(args, settings)
    rows = [
        [source.name, source.url, _mask(source.token), _last_pull(client, source.name)]
        for source in sources.list_sources(client)
    ]
    _print_table(["NAME", "URL", "TOKEN", "LAST PULL"], rows)
    return 0


def cmd_sources_remove(args: argparse.Namespace, settings: Settings) -> int:
    """Remove a pull source."""
    if not sources.remove_source(_admin_client(args, settings), name=args.name):
        print(f"relay: no source {args.name}", file=sys.stderr)
        return 1
    print(f"removed source {args.name}")
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    """Queue depths, workers seen, each subscription's health; `--json` for machines."""
    current = status.gather(_admin_client(args, settings), worker_ttl=settings.worker_heartbeat_ttl)
    if args.json:
        print(json.dumps(status.as_json(current), indent=2))
    else:
        status.render(current, Console())
    return 0


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    """Re-send a createdAt range's events the subscription's policy includes, as new deliveries."""
    settings = _with_redis(args, settings)
    client = open_redis(settings)
    record = subscriptions.get_subscription(client, sub_id=args.subscription)
    if record is None:
        raise NotFoundError(f"no subscription {args.subscription}")
    if not record.on:
        raise ConflictError(f"subscription {record.id} is off; turn it on first")
    now = now_ms()
    start, end = _moment(args.start, "--from", now), _moment(args.end or str(now), "--to", now)
    if start > end:
        raise UsageError("--from is after --to")
    console = Console(stderr=True)
    with console.status("selecting events and creating deliveries"):
        ids = replay(
            client, record=record, start_ms=start, end_ms=end, settings=settings, now_ms=now
        )
        _enqueue_deliveries(settings, ids)
    # the name is a writer's: printed as text (rich would obey its markup), escaped
    console.print(
        f"replaying {len(ids)} events to {record.id} ({escaped(record.name)})", markup=False
    )
    if not ids or args.no_wait:
        return 0
    outcome = replay_progress.follow(client, ids, console=console, timeout=args.timeout)
    print(json.dumps({"count": len(ids), "states": dict(sorted(outcome.items()))}))
    return 0 if outcome["delivered"] == len(ids) else 1


# --- the parser --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; `parse_args` adds the worker's pass-through arguments."""
    parser = argparse.ArgumentParser(
        prog="relay", description="Event-driven audit-log relay: Unleash events in, webhooks out."
    )
    parser.add_argument("--version", action="version", version=f"relay {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run_commands(commands)
    _add_token_commands(commands)
    _add_sources_commands(commands)
    _add_operator_commands(commands)
    return parser


def _add_run_commands(commands: Any) -> None:
    up = _command(commands, "up", cmd_up, "run everything on this machine (embedded Redis)")
    up.add_argument("--host", default="127.0.0.1", help="API address (default 127.0.0.1)")
    up.add_argument("--port", type=int, default=8080, help="API port (default 8080)")
    up.add_argument("--data-dir", type=Path, help="Redis data, admin token (default .relay)")
    serve = _command(commands, "serve", cmd_serve, "run the API against RELAY_REDIS_URL")
    serve.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    serve.add_argument("--workers", type=int, default=1, help="API processes (default 1)")
    serve.add_argument(
        "--fd",
        type=int,
        help="serve on this inherited listening socket instead of binding --host/--port"
        " (relay up passes the one it holds)",
    )
    _command(
        commands,
        "worker",
        cmd_worker,
        "run a Celery worker against RELAY_REDIS_URL (extra arguments go to celery)",
    )
    beat = _command(commands, "beat", cmd_beat, "run the beat schedule (one per deployment)")
    beat.add_argument("--schedule", type=Path, help="schedule file (default <data dir>/...)")
    _add_listen_command(commands)


_LISTEN_TEXT = """\
Receive deliveries on this machine and print each one: its event's type, flag and
project/environment, the attempt number, and whether its signatures (Standard Webhooks'
webhook-signature and LaunchDarkly's X-LD-Signature) verify with the subscription's
secret. It creates a webhook subscription to http://127.0.0.1:PORT/ (or takes back the
one an earlier `relay listen` on that port left) and deletes it on Ctrl-C. That
subscription alone may deliver to this loopback port, past the destination guard; it
is marked in its _status (localListener). Deliveries come from the workers: run it on
the machine of `relay up`.

examples:
  relay listen                                          every event, on port 9876
  relay listen --subscribe 'proj/*:env/production:flag/*'   production flag changes
  relay listen --status 503                             answer 503: watch the retries"""


def _add_listen_command(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "listen",
        help="print the deliveries of a subscription to this machine (Ctrl-C removes it)",
        description=_LISTEN_TEXT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=cmd_listen)
    parser.add_argument(
        "--port",
        type=_port,
        default=listen.DEFAULT_PORT,
        help=f"port on 127.0.0.1 to receive on (default {listen.DEFAULT_PORT}; 0: any free one)",
    )
    parser.add_argument(
        "--subscribe",
        action="append",
        metavar="POLICY",
        help="a resource the subscription's policy allows, e.g. 'proj/*:env/production:flag/*'"
        " (repeatable; default: every event)",
    )
    parser.add_argument(
        "--status",
        type=_http_status,
        default=200,
        metavar="CODE",
        help="answer every delivery with this HTTP status, e.g. 503 to watch retries (default 200)",
    )
    _add_data_dir(parser)


def _add_token_commands(commands: Any) -> None:
    token = commands.add_parser("token", help="manage API tokens")
    actions = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = _command(actions, "create", cmd_token_create, "create a token, print its secret")
    create.add_argument("--role", required=True, choices=[role.value for role in Role])
    create.add_argument("--name", default="cli", help="a label (default cli)")
    _command(actions, "list", cmd_token_list, "list tokens (no secrets)")
    revoke = _command(actions, "revoke", cmd_token_revoke, "revoke a token")
    revoke.add_argument("id", help="the token's id (see `relay token list`)")
    for sub in (create, revoke, actions.choices["list"]):
        _add_data_dir(sub)


def _add_sources_commands(commands: Any) -> None:
    group = commands.add_parser("sources", help="manage Unleash servers to pull events from")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = _command(actions, "add", cmd_sources_add, "add or replace a pull source")
    add.add_argument("name", help="the source name (also the events' `source`)")
    add.add_argument("--url", required=True, help="the Unleash server's base URL")
    add.add_argument(
        "--token-env",
        default=SOURCE_TOKEN_ENV,
        metavar="NAME",
        help=f"environment variable holding the Unleash admin token (default {SOURCE_TOKEN_ENV});"
        " unset: prompt on a terminal",
    )
    add.add_argument("--token", help=argparse.SUPPRESS)  # removed: refused with the reason
    _command(actions, "list", cmd_sources_list, "list pull sources")
    remove = _command(actions, "remove", cmd_sources_remove, "remove a pull source")
    remove.add_argument("name")
    for sub in (add, remove, actions.choices["list"]):
        _add_data_dir(sub)


def _add_operator_commands(commands: Any) -> None:
    state = _command(commands, "status", cmd_status, "queues, workers, subscriptions' health")
    state.add_argument("--json", action="store_true", help="print JSON instead of tables")
    again = _command(
        commands, "replay", cmd_replay, "re-send a time range's events to a subscription"
    )
    again.add_argument("--subscription", required=True, help="the subscription's id")
    moment = "RFC 3339, ms since the epoch, or a duration ago (30m, 2h, 1d)"
    again.add_argument("--from", dest="start", required=True, help=f"createdAt from: {moment}")
    again.add_argument("--to", dest="end", help=f"createdAt to (default now): {moment}")
    again.add_argument("--no-wait", action="store_true", help="do not follow the deliveries")
    again.add_argument("--timeout", type=float, help="stop following after this many seconds")
    for sub in (state, again):
        _add_data_dir(sub)


def _command(commands: Any, name: str, handler: Command, text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(name, help=text, description=text)
    parser.set_defaults(handler=handler)
    return parser


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="without RELAY_REDIS_URL: use the Redis of the `relay up` running here",
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse `argv`; only `relay worker` accepts unknown arguments (passed to celery)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.handler is not cmd_worker:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.celery_args = extra[1:] if extra[:1] == ["--"] else extra
    return args


def main(argv: Sequence[str] | None = None, *, settings: Settings | None = None) -> int:
    """Run one command; `settings` default to the `RELAY_*` environment."""
    args = parse_args(argv)
    try:
        settings = settings or Settings()
    except ValidationError as exc:  # a bad RELAY_* variable: say which, without its value
        print(f"relay: {settings_problems(exc)}", file=sys.stderr)
        return 2
    try:
        handler: Command = args.handler
        return handler(args, settings)
    except UsageError as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return 2
    except InvalidRequestError as exc:
        reasons = "".join(f"\n  {e.attribute}: {e.reason}" for e in exc.errors)
        print(f"relay: {exc.message}{reasons}", file=sys.stderr)
        return 2
    except RelayError as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return 1


# --- helpers -------------------------------------------------------------------------------


def _check_integrations(settings: Settings) -> None:
    """Stop before starting anything when a manifest does not load (its file and field)."""
    try:
        load_catalog(settings)
    except ManifestError as exc:
        raise UsageError(f"integration manifest {exc}") from exc


def _require_redis(settings: Settings, command: str) -> None:
    if not settings.has_redis:
        raise UsageError(
            f"RELAY_REDIS_URL is not set: `relay {command}` runs against an existing Redis "
            "(e.g. RELAY_REDIS_URL=redis://localhost:6379/0, or RELAY_REDIS_SENTINELS), "
            "or use `relay up` for everything"
        )


def _admin_client(args: argparse.Namespace, settings: Settings) -> Redis:
    """RELAY_REDIS_URL or the sentinels' primary, else the embedded Redis of a `relay up`
    running on the data dir."""
    return open_redis(_with_redis(args, settings))


def _with_redis(args: argparse.Namespace, settings: Settings) -> Settings:
    """`settings`, or, with no Redis configured, with the URL of a running `relay up`."""
    if settings.has_redis:
        return settings
    return settings.model_copy(update={"redis_url": _embedded_redis_url(args, settings)})


def _embedded_redis_url(args: argparse.Namespace, settings: Settings) -> str:
    url_file = (args.data_dir or settings.data_dir) / REDIS_URL_FILE
    # a file left by a killed `relay up` names a port anyone may listen on now: only the
    # lock, held by every process of a live `relay up`, says its Redis is still there
    if not url_file.exists() or not data_dir_in_use(url_file.parent):
        raise UsageError(
            "RELAY_REDIS_URL is not set and no `relay up` is running with data dir "
            f"{url_file.parent} (set RELAY_REDIS_URL or --data-dir)"
        )
    return url_file.read_text().strip()


def _run_celery(app: Any, argv: list[str]) -> int:
    """`celery <argv>` for `app`, and its exit code. Celery's own `app.start` drops the code
    that click returns when a worker or beat stops on an unrecoverable error (click 8.2
    and later return it instead of raising Exit), so `relay worker` would exit 0 on one."""
    from celery.bin.celery import celery
    from click.exceptions import ClickException, Exit

    celery.params[0].default = app  # what app.start does: the -A option's value
    try:
        code = celery.main(args=argv, standalone_mode=False)
    except Exit as exc:
        return int(exc.exit_code)
    except ClickException as exc:  # an option celery does not know: its message, not a trace
        exc.show()
        return exc.exit_code
    finally:
        celery.params[0].default = None
    return code if isinstance(code, int) else 0


def _celery_app() -> Any:
    # the CLI is the process entry point that runs workers; nothing else in `relay`
    # imports `workers` beyond enqueue/names, so the import stays inside the command
    import celery.signals

    import workers.celery_app

    # celery leaves logging alone when someone handles setup_logging: keep relay's
    celery.signals.setup_logging.connect(_keep_relay_logging, weak=False)
    return workers.celery_app


def _keep_relay_logging(**_: Any) -> None:
    """Celery's setup_logging receiver: logging is already configured."""


def _moment(text: str, option: str, now_ms: int) -> int:
    """Milliseconds of an RFC 3339 time, epoch milliseconds, or a duration before now."""
    if text.strip().isdigit():
        return int(text)
    try:
        return rfc3339_ms(text)
    except ValueError:
        pass
    try:
        return now_ms - int(parse_duration(text) * 1000)
    except ValueError:
        raise UsageError(f"{option} {text!r}: {_MOMENT_HELP}") from None


_MOMENT_HELP = "use RFC 3339 (2024-05-31T13:00:00Z), ms since the epoch, or a duration ago (2h)"


def _enqueue_deliveries(settings: Settings, ids: list[str]) -> None:
    # relay may import relay.tasks (publishing by name); a lost publish only delays:
    # the deliveries are due, and the pump takes them after one lease
    from relay import tasks

    try:
        tasks.deliver(settings, ids)
    except Exception as exc:  # the broker is the same Redis; say so, the pump will send them
        print(f"relay: could not enqueue now ({exc}); the pump will send them", file=sys.stderr)


def _port(text: str) -> int:
    """A TCP port (0-65535), for argparse."""
    if not text.isascii() or not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port from 0 to 65535")
    return int(text)


def _http_status(text: str) -> int:
    """An HTTP status code a receiver may answer with (200-599), for argparse."""
    if not text.isascii() or not text.isdigit() or not 200 <= int(text) <= 599:
        raise argparse.ArgumentTypeError(f"{text!r} is not an HTTP status from 200 to 599")
    return int(text)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def _source_token(args: argparse.Namespace) -> str:
    """The Unleash token from `--token-env`'s variable, else typed at a terminal prompt."""
    if args.token is not None:
        raise UsageError(
            "--token was removed: a token in the command line is visible to every local user "
            f"(ps); set {SOURCE_TOKEN_ENV} (or name another variable with --token-env), "
            "or run on a terminal to be asked for it"
        )
    token = os.environ.get(args.token_env, "")
    if token:
        return token
    if sys.stdin.isatty():
        try:
            return getpass.getpass(f"Unleash admin token for {args.name}: ")
        except EOFError:
            raise UsageError("no token given") from None
    raise UsageError(
        f"no token: set {args.token_env} in the environment (or name another variable with "
        "--token-env), or run on a terminal to be asked for it"
    )


def _last_pull(client: Redis, name: str) -> str:
    state = sources.pull_status(client, name=name)
    if state.last_pull_at is None:
        return "never"
    if state.last_error is None:
        return f"ok {_iso(state.last_pull_at)}"
    # the error may quote what the Unleash server answered: escaped, so it cannot drive the
    # terminal
    return f"failed {_iso(state.last_pull_at)}: {printable(state.last_error, limit=_ERROR_SHOWN)}"


_ERROR_SHOWN = 120  # characters of a failed pull's error in `relay sources list`


def _mask(secret: str) -> str:
    return f"{secret[:4]}...{secret[-4:]}" if len(secret) > 12 else "****"


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    for row in [header, *rows]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


if __name__ == "__main__":
    sys.exit(main())
