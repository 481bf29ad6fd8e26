"""Run a command without a shell, log its output to a file, stop its whole process group at a limit."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

_GRACE_S = 10.0


@dataclass(frozen=True)
class ProcResult:
    returncode: int | None
    timed_out: bool
    log_text: str
    wall_s: float


def run_logged(argv, log_path, *, timeout_s: float | None = None, env=None, on_start=None) -> ProcResult:
    """Run ``argv`` (a list, no shell) with stdout+stderr to ``log_path``.

    The child starts a new session, so at the limit its whole process group (vLLM's engine
    workers included) gets SIGTERM, then SIGKILL after a grace period.

    Parameters
    ----------
    argv : list of str
    log_path : path
    timeout_s : float, optional
        Wall-clock limit, seconds.
    env : dict, optional
        Environment (default: inherited).
    on_start : callable, optional
        Called with the ``Popen`` right after the start (e.g. to start a sampler).
    """

    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    timed_out = False
    with open(log_path, "wb") as log:  # the child keeps its own descriptor
        try:
            proc = subprocess.Popen([str(a) for a in argv], stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        except OSError as exc:
            log.write(f"could not start {argv[0]!r}: {exc}\n".encode())
            proc = None
    if proc is None:
        return ProcResult(None, False, log_path.read_text(errors="replace"), 0.0)
    if on_start is not None:
        on_start(proc)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _stop_group(proc)
    except BaseException:
        _stop_group(proc)
        raise
    return ProcResult(proc.returncode, timed_out, log_path.read_text(errors="replace"), time.monotonic() - t0)


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the child's process group (its pgid is its pid), then SIGKILL what is left of it."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=_GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
