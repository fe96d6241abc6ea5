"""A small process supervisor: start children, restart the ones that die, stop them all.

Each child runs in its own process group (session) so that stopping it also stops what it
started (a Celery pool's processes, for instance) and so a Ctrl-C at the terminal reaches
only the supervisor, which then stops the children in order: the highest `tier` first
(API, worker, beat), Redis last, so nothing loses its store while it is still working.

Children die with the supervisor even when it cannot stop them (SIGKILL, a crash): each
is started with Linux's parent-death signal, so no orphan keeps a port, a queue or the
data directory's lock.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType

log = logging.getLogger(__name__)

Launch = Callable[[], "subprocess.Popen[bytes]"]


class SupervisorError(RuntimeError):
    """A child could not be started the first time."""


@dataclass(frozen=True)
class Backoff:
    """Delay before a restart: doubling from `first` up to `ceiling`, reset once stable."""

    first: float = 1.0
    ceiling: float = 30.0
    stable_after: float = 30.0

    def delay(self, failures: int) -> float:
        return float(min(self.ceiling, self.first * 2 ** max(0, failures - 1)))


@dataclass
class Child:
    """One supervised process: how to start it, and its state."""

    name: str
    launch: Launch
    tier: int = 1
    grace: float = 6.0  # seconds between SIGTERM and SIGKILL when stopping
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None


def spawn(argv: Sequence[str], env: Mapping[str, str], *, pass_fds: Sequence[int] = ()) -> Launch:
    """A launcher for `argv` in a new session (its own process group), stdin closed.

    The child is SIGKILLed if this process dies first; `pass_fds` stay open in it.
    """

    def launch() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            list(argv),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
            preexec_fn=die_with_parent(signal.SIGKILL),
        )

    return launch


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(sig: signal.Signals) -> Callable[[], None] | None:
    """A `preexec_fn` that has the child get `sig` when this process dies (Linux).

    Linux sends it when the *thread* that forked the child ends, so it is set only for
    children started by the main thread (None elsewhere), which lives as long as the
    process.
    """
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        if sig != signal.SIGKILL:  # a Python handler would only set a flag exec forgets
            signal.signal(sig, signal.SIG_DFL)
        if prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before prctl: no signal will come
            os._exit(1)

    return preexec


class Supervisor:
    """Runs `children` until SIGINT or SIGTERM, restarting any that exits."""

    def __init__(
        self,
        children: Sequence[Child],
        *,
        backoff: Backoff | None = None,
        poll_interval: float = 0.2,
    ) -> None:
        self.children = list(children)
        self.backoff = backoff or Backoff()
        self.poll_interval = poll_interval
        self._stopping = False

    def run(self) -> None:
        """Start everything, supervise until a stop signal, then stop everything."""
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {signum: signal.signal(signum, self._on_signal) for signum in handled}
        try:
            self.start()
            while not self._stopping:
                self.check()
                time.sleep(self.poll_interval)
        finally:
            self.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def request_stop(self) -> None:
        self._stopping = True

    def start(self) -> None:
        """Start every child in order; a child that cannot start the first time is fatal."""
        for child in self.children:
            if self._stopping:
                return
            try:
                self._launch(child)
            except (OSError, RuntimeError) as exc:
                raise SupervisorError(f"could not start {child.name}: {exc}") from exc

    def check(self) -> None:
        """One supervision pass: notice exits, restart what is due."""
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    self._restart(child)
            elif child.process is not None and child.process.poll() is not None:
                self._schedule_restart(child, child.process.returncode, now)

    def stop(self) -> None:
        """SIGTERM each tier's processes, SIGKILL their groups after the grace period."""
        self._stopping = True
        for tier in sorted({child.tier for child in self.children}, reverse=True):
            _stop_together([c for c in self.children if c.tier == tier])

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        self.request_stop()

    def _launch(self, child: Child) -> None:
        child.process = child.launch()
        child.started_at = time.monotonic()
        child.restart_at = None
        log.info("started %s (pid %d)", child.name, child.process.pid, extra=_fields(child))

    def _restart(self, child: Child) -> None:
        try:
            self._launch(child)
        except (OSError, RuntimeError) as exc:
            child.failures += 1
            delay = self.backoff.delay(child.failures)
            child.restart_at = time.monotonic() + delay
            log.error(
                "could not restart %s: %s; trying again in %.1fs",
                child.name,
                exc,
                delay,
                extra={"child": child.name, "restart_in": delay},
            )

    def _schedule_restart(self, child: Child, code: int, now: float) -> None:
        assert child.process is not None
        _kill_group(child.process.pid)  # whatever it left behind goes with it
        ran = now - child.started_at
        child.failures = 1 if ran >= self.backoff.stable_after else child.failures + 1
        delay = self.backoff.delay(child.failures)
        child.restart_at = now + delay
        log.warning(
            "%s (pid %d) exited with code %s after %.1fs; restarting in %.1fs",
            child.name,
            child.process.pid,
            code,
            ran,
            delay,
            extra={**_fields(child), "exit_code": code, "restart_in": delay},
        )


def _stop_together(children: list[Child]) -> None:
    running = [c for c in children if c.process is not None and c.process.poll() is None]
    for child in running:
        assert child.process is not None
        # only the leader gets SIGTERM: it shuts its own helpers down gracefully
        child.process.terminate()
    deadline = time.monotonic() + max((c.grace for c in running), default=0.0)
    for child in children:
        if child.process is None:
            continue
        try:
            child.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in time; killing it", child.name, extra=_fields(child))
        _kill_group(child.process.pid)
        if child.process.poll() is None:  # not a group leader after all
            child.process.kill()
        child.process.wait()
        log.info("stopped %s", child.name, extra=_fields(child))


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(pgid, signal.SIGKILL)


def _fields(child: Child) -> dict[str, object]:
    return {"child": child.name, "pid": child.pid}
