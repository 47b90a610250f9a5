"""The worker beside `matchmaking run` in the embedded default: a real `celery worker` process
(with beat) on the SQLite broker, started with the web app and stopped with it."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from flask import Flask

log = logging.getLogger(__name__)


def worker_command(app: Flask, *, beat: bool = True, loglevel: str = "info") -> list[str]:
    command = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", f"--loglevel={loglevel}",
               f"--concurrency={int(app.config['WORKER_CONCURRENCY'])}", "--without-gossip", "--without-mingle"]
    if beat:
        command += ["--beat", "--schedule", str(Path(app.instance_path) / "celerybeat-schedule")]
    return command


def _die_with_parent() -> None:
    # Linux: the worker gets SIGTERM if `matchmaking run` is killed outright, so it never lingers.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start(app: Flask, *, beat: bool = True) -> subprocess.Popen[bytes]:
    return subprocess.Popen(worker_command(app, beat=beat), env=dict(os.environ), preexec_fn=_die_with_parent,
                            start_new_session=True)


def stop(process: subprocess.Popen[bytes], timeout: float = 8.0) -> None:
    """Warm shutdown (running tasks finish), then kill the whole process group if it lingers."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


@contextlib.contextmanager
def embedded_worker(app: Flask, enabled: bool = True) -> Iterator[subprocess.Popen[bytes] | None]:
    """Run a worker for the duration of the block when the broker is the embedded one."""
    from matchmaking.celery import is_embedded

    celery_app = app.extensions["celery"]
    if not enabled or not is_embedded(str(celery_app.conf.broker_url)):
        yield None
        return
    process = start(app)
    log.info("embedded worker started (pid %s)", process.pid)
    previous = signal.getsignal(signal.SIGTERM)

    def _terminate(signum: int, frame: object) -> None:
        raise SystemExit(0)  # unwinds to the finally below, so the worker is stopped too

    signal.signal(signal.SIGTERM, _terminate)
    try:
        yield process
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop(process)
