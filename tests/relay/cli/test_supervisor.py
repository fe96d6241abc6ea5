"""The supervisor with real child processes: restarts with backoff, stops whole groups."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from relay.cli.supervisor import Backoff, Child, Supervisor, SupervisorError, spawn
from tests.support import eventually

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
# a child that ignores SIGTERM and leaves a grandchild that ignores it too
STUBBORN = [
    sys.executable,
    "-c",
    "import signal, subprocess, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "subprocess.Popen([sys.executable, '-c', 'import signal, time; "
    "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])\n"
    "time.sleep(60)\n",
]
FAILING = [sys.executable, "-c", "raise SystemExit(3)"]


def _check_until(supervisor: Supervisor, condition: Callable[[], bool]) -> None:
    """Run supervision passes until `condition` holds."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        supervisor.check()
        time.sleep(0.05)


@pytest.fixture
def supervisors() -> Iterator[list[Supervisor]]:
    """Supervisors a test made; stopped afterwards whatever happened."""
    made: list[Supervisor] = []
    yield made
    for supervisor in made:
        supervisor.stop()


def _supervise(made: list[Supervisor], children: list[Child], backoff: Backoff) -> Supervisor:
    supervisor = Supervisor(children, backoff=backoff)
    made.append(supervisor)
    supervisor.start()
    return supervisor


def test_backoff_doubles_up_to_its_ceiling() -> None:
    """Restart delays double from `first` and stop at `ceiling`."""
    backoff = Backoff(first=1.0, ceiling=30.0)
    assert [backoff.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_dead_child_is_restarted_and_logged(
    supervisors: list[Supervisor], caplog: pytest.LogCaptureFixture
) -> None:
    """A child that dies gets a new process after the backoff delay; both steps are logged."""
    # given
    child = Child("sleeper", spawn(SLEEPER, os.environ))
    supervisor = _supervise(supervisors, [child], Backoff(first=0.1))
    first_pid = child.pid
    assert first_pid is not None
    # when
    caplog.set_level(logging.INFO, logger="relay.cli.supervisor")
    psutil.Process(first_pid).kill()
    _check_until(supervisor, lambda: child.pid != first_pid and child.restart_at is None)
    # then
    assert child.process is not None and child.process.poll() is None
    messages = [r.getMessage() for r in caplog.records]
    assert any(f"sleeper (pid {first_pid}) exited with code -9" in m for m in messages)
    assert any(f"started sleeper (pid {child.pid})" in m for m in messages)


def test_crash_loop_backs_off_more_each_time(supervisors: list[Supervisor]) -> None:
    """A child that keeps failing at once waits twice as long before each new attempt."""
    # given
    child = Child("failing", spawn(FAILING, os.environ))
    supervisor = _supervise(supervisors, [child], Backoff(first=0.2, ceiling=10))
    delays = []
    # when: three exits are noticed
    for _ in range(3):
        assert child.process is not None
        child.process.wait(10)
        noticed = time.monotonic()
        supervisor.check()
        assert child.restart_at is not None
        delays.append(round(child.restart_at - noticed, 1))
        _check_until(supervisor, lambda: child.restart_at is None)
    # then
    assert delays == [0.2, 0.4, 0.8]


def test_stop_kills_what_ignores_sigterm_with_its_group(supervisors: list[Supervisor]) -> None:
    """Stopping SIGKILLs a child ignoring SIGTERM after its grace, and its grandchild too."""
    # given
    child = Child("stubborn", spawn(STUBBORN, os.environ), grace=0.5)
    supervisor = _supervise(supervisors, [child], Backoff())
    assert child.pid is not None
    parent = psutil.Process(child.pid)
    eventually(lambda: len(parent.children()) == 1, timeout=10)
    family = [parent, *parent.children()]
    # when
    started = time.monotonic()
    supervisor.stop()
    # then
    assert time.monotonic() - started < 3
    # a SIGKILLed orphan is reaped by init, a moment later
    eventually(lambda: not any(_alive(proc) for proc in family), timeout=5)


# a supervisor in a process of its own, with one sleeping child; prints the child's pid
SUPERVISOR = [
    sys.executable,
    "-c",
    "import os, sys\n"
    "from relay.cli.supervisor import Child, Supervisor, spawn\n"
    "child = Child('sleeper', spawn([sys.executable, '-c', 'import time; time.sleep(60)'],"
    " os.environ))\n"
    "supervisor = Supervisor([child])\n"
    "supervisor.start()\n"
    "print(child.pid, flush=True)\n"
    "while True: supervisor.check(); __import__('time').sleep(0.1)\n",
]


def test_children_die_with_a_sigkilled_supervisor() -> None:
    """A supervisor killed outright (no chance to stop anything) leaves no child running."""
    # given
    with subprocess.Popen(SUPERVISOR, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        child = psutil.Process(int(process.stdout.readline()))
        try:
            assert _alive(child)
            # when
            process.kill()
            process.wait(10)
            # then
            eventually(lambda: not _alive(child), timeout=5)
        finally:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()


def test_stop_goes_tier_by_tier(supervisors: list[Supervisor], tmp_path: Path) -> None:
    """The higher tier (API, workers) has exited before the lower one (Redis) gets SIGTERM."""
    # given: children that write their name to a file when they get SIGTERM
    log_file = tmp_path / "terminated"

    def recorder(name: str) -> list[str]:
        code = (
            "import signal, sys, time\n"
            "def bye(*_):\n"
            f"    open({str(log_file)!r}, 'a').write({name!r} + '\\n'); sys.exit(0)\n"
            "signal.signal(signal.SIGTERM, bye)\n"
            "time.sleep(60)\n"
        )
        return [sys.executable, "-c", code]

    store = Child("store", spawn(recorder("store"), os.environ), tier=0)
    app = Child("app", spawn(recorder("app"), os.environ), tier=1)
    supervisor = _supervise(supervisors, [store, app], Backoff())
    time.sleep(0.5)  # both have installed their handler
    # when
    supervisor.stop()
    # then
    assert log_file.read_text().split() == ["app", "store"]


def test_first_start_failure_is_fatal(supervisors: list[Supervisor]) -> None:
    """A child that cannot start at all stops `start()` with a SupervisorError."""
    child = Child("missing", spawn(["/nonexistent/program"], os.environ))
    with pytest.raises(SupervisorError, match="could not start missing"):
        _supervise(supervisors, [child], Backoff())


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
