"""End-to-end rig for the workers: a scratch database, a real `celery worker` subprocess, an
SMTP sink (aiosmtpd), a webhook receiver (http.server) and, when asked, a private redis-server.

Counting is done at the receivers, by Message-ID and webhook-id: an owed message never received
is lost, one received twice is doubled.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.2, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


# --- receivers -----------------------------------------------------------------------------------


class SmtpSink:
    """A local SMTP server recording each accepted message's Message-ID; can be slow, or down."""

    def __init__(self, port: int | None = None, delay: float = 0.0, accept_then_wait: bool = False) -> None:
        self.port = port or free_port()
        self.delay = delay
        # True: the message is kept before the delay, as a server that queued it but whose "250 OK"
        # never reached the client; a kill in that window leaves a duplicate to count.
        self.accept_then_wait = accept_then_wait
        self.received: list[tuple[str, str]] = []  # (Message-ID, To)
        self.messages: list[email.message.Message] = []
        self.active_peers: set[int] = set()
        self.lock = threading.Lock()
        self.controller: Any = None

    def start(self) -> SmtpSink:
        from aiosmtpd.controller import Controller

        sink = self

        class Handler:
            async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
                with sink.lock:
                    sink.active_peers.add(session.peer[1])
                envelope.mail_from = address
                return "250 OK"

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                if sink.delay and not sink.accept_then_wait:
                    await asyncio.sleep(sink.delay)
                message = email.message_from_bytes(envelope.content)
                with sink.lock:
                    sink.received.append((str(message["Message-ID"]), str(message["To"])))
                    sink.messages.append(message)
                if sink.delay and sink.accept_then_wait:
                    await asyncio.sleep(sink.delay)
                with sink.lock:
                    sink.active_peers.discard(session.peer[1])
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def counts(self) -> Counter[str]:
        with self.lock:
            return Counter(mid for mid, _ in self.received)


class WebhookReceiver:
    """A local HTTP endpoint checking Standard Webhooks signatures; answers `status_for(n)`."""

    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret
        self.port = free_port()
        self.requests: list[tuple[str, int]] = []  # (webhook-id, status answered)
        self.bad_signatures = 0
        self.status_for: Callable[[int], int] = lambda n: 200
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/matchmaking"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                msg_id = self.headers.get("webhook-id", "")
                stamp = self.headers.get("webhook-timestamp", "")
                key = base64.b64decode(receiver.secret.removeprefix("whsec_"))
                expected = "v1," + base64.b64encode(
                    hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()).decode()
                signatures = self.headers.get("webhook-signature", "").split()
                with receiver.lock:
                    if expected not in signatures:
                        receiver.bad_signatures += 1
                        status = 401
                    else:
                        status = receiver.status_for(len(receiver.requests))
                    receiver.requests.append((msg_id, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def accepted(self) -> Counter[str]:
        with self.lock:
            return Counter(mid for mid, status in self.requests if 200 <= status < 300)


class RedisServer:
    """A redis-server of the test's own on a free port, so stopping it disturbs nobody."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="mm-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.ping, 10, 0.05, "redis-server")
        return self

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def redis_or_skip() -> None:
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is required under CI")
        pytest.skip("redis-server is not installed")


# --- database ------------------------------------------------------------------------------------


@contextlib.contextmanager
def scratch_database(tmp_path: Path) -> Iterator[str]:
    """A fresh database (SQLite file, or PostgreSQL when TEST_DATABASE_URL is set), migrated and seeded."""
    from matchmaking import migrate
    from matchmaking.services import seeding
    from tests.conftest import make_app

    server = os.environ.get("TEST_DATABASE_URL")
    admin = None
    if server:
        base = make_url(server).set(drivername="postgresql+psycopg")
        name = f"mm_workers_{uuid.uuid4().hex[:10]}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = base.set(database=name).render_as_string(hide_password=False)
    else:
        url = "sqlite:///" + str(tmp_path / "workers.sqlite3")
    try:
        app = make_app(url)
        with app.app_context():
            from matchmaking.extensions import db

            migrate.upgrade(db.engine)
            seeding.load_reference(db.session)
            db.session.commit()
            db.engine.dispose()
        yield url
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


# --- the worker ----------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
    return out


def pid_of_local_port(port: int) -> int | None:
    """The process holding the TCP socket bound to this local port (to find who talks to the sink)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    link = os.readlink(fd)
                    if link.startswith("socket:[") and link[8:-1] in inodes:
                        return int(entry.name)
    return None


class Worker:
    """`celery worker --beat` on the test's database and broker, in its own process group."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.groups: list[int] = []
        self.files: list[Any] = []

    def start(self, concurrency: int = 2) -> Worker:
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the process's life
        self.files.append(log)
        schedule = str(self.log_path.with_suffix(f".beat-{len(self.groups)}"))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tests.workers.worker_app", "worker", "--loglevel=info",
             f"--concurrency={concurrency}", "--pool=prefork", "--beat", "--schedule", schedule,
             "--without-gossip", "--without-mingle", "-n", f"w{len(self.groups)}@%h"],
            cwd=ROOT, env=self.env, stdout=log, stderr=log, start_new_session=True)
        self.groups.append(self.process.pid)
        wait_until(lambda: b"ready." in self.log_path.read_bytes(), 60, 0.2, "worker ready")
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def pool_children(self) -> list[int]:
        return _children(self.pid)

    def scheduling(self) -> Worker:
        """Wait for the embedded scheduler's first tick: the worker is then fully up, not starting."""
        wait_until(lambda: b"Sending due task" in self.log_path.read_bytes(), 30, 0.2, "the scheduler's first tick")
        return self

    def kill_parent(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        assert self.process is not None
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        for group in self.groups:  # orphans of a killed parent too
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        for f in self.files:
            f.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


FAST = {
    # Short limits so that recovery from a killed worker takes seconds, not minutes.
    "TASK_TIME_LIMIT": 8,
    "TASK_SOFT_TIME_LIMIT": 6,
    "OUTBOX_LEASE_SECONDS": 10,
    "OUTBOX_SWEEP_SECONDS": 1,
    "OUTBOX_SWEEP_GRACE_SECONDS": 2,
    "OUTBOX_REPUBLISH_SECONDS": 8,
    "OUTBOX_RETRY_BASE_SECONDS": 0.5,
    "OUTBOX_RETRY_MAX_SECONDS": 2,
    "OUTBOX_MAX_ATTEMPTS": 40,
    "SMTP_TLS": "none",
    "SMTP_TIMEOUT": 5,
    "WEBHOOK_ALLOW_PRIVATE": True,
    "WEBHOOK_TIMEOUT": 3,
    "SECRET_KEY": "workers-test",
    "MAIL_FROM": "Matières <ne-pas-repondre@avaloirs.example.fr>",
}


class Rig:
    """One scenario: database, broker, receivers, worker, and the test process's own app."""

    def __init__(self, tmp_path: Path, database_url: str, broker_url: str | None, smtp: SmtpSink | None,
                 hooks: WebhookReceiver | None) -> None:
        from tests.conftest import make_app

        self.tmp_path = tmp_path
        self.database_url = database_url
        self.smtp = smtp
        self.hooks = hooks
        self.config: dict[str, Any] = dict(FAST)
        if broker_url:
            self.config["CELERY_BROKER_URL"] = broker_url
        else:
            self.config["CELERY_EMBEDDED_BROKER"] = "sqla+sqlite:///" + str(tmp_path / "broker.sqlite3")
        if smtp is not None:
            self.config |= {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": smtp.port}
        self.app = make_app(database_url, **self.config)
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
        env |= {"DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
        env |= {f"MATCHMAKING_{k}": (json.dumps(v) if not isinstance(v, str) else v) for k, v in self.config.items()}
        self.env = env
        self.workers: list[Worker] = []
        self.firm_pairs: list[tuple[Any, Any]] = []

    def worker(self) -> Worker:
        worker = Worker(self.env, self.tmp_path / f"worker{len(self.workers)}.log").start()
        self.workers.append(worker)
        return worker

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        from matchmaking.extensions import db

        with self.app.app_context():
            db.session.remove()
            db.engine.dispose()

    @contextlib.contextmanager
    def db(self) -> Iterator[Any]:
        from matchmaking.extensions import db

        with self.app.app_context():
            yield db.session
            db.session.remove()

    def setup_firms(self, pairs: int, webhook: bool = True) -> None:
        """Firms with one member each; the buyer firms have a webhook endpoint."""
        from matchmaking.models import WebhookEndpoint
        from tests.factories import make_firm, make_user

        with self.db() as session:
            for i in range(pairs):
                seller = make_firm(session, name=f"Vendeur {i}")
                buyer = make_firm(session, name=f"Acheteur {i}")
                make_user(session, seller, email=f"vendeur{i}@example.fr", name=f"V{i}")
                make_user(session, buyer, email=f"acheteur{i}@example.fr", name=f"A{i}")
                if webhook and self.hooks is not None:
                    session.add(WebhookEndpoint(firm_id=buyer.id, url=self.hooks.url, secret=self.hooks.secret))
                session.commit()
                self.firm_pairs.append((seller.id, buyer.id))

    def publish_pair(self, i: int) -> float:
        """Publish pair i's offer, then its need, each in its own request-like transaction."""
        from matchmaking.models import Firm
        from tests.factories import make_listing

        seller_id, buyer_id = self.firm_pairs[i]
        title = f"Lot numéro {i} de sciure"
        with self.db() as session:
            make_listing(session, session.get(Firm, seller_id), title=title)
            session.commit()
        with self.db() as session:
            make_listing(session, session.get(Firm, buyer_id), kind="need", title=title)
            session.commit()
        return time.monotonic()

    # --- what is owed, and what arrived

    def owed(self) -> dict[str, list[str]]:
        from matchmaking.models import OutboxEvent

        with self.db() as session:
            rows = session.scalars(select(OutboxEvent).where(OutboxEvent.kind.like("deliver.%"))).all()
            return {
                "email": [email_id(r) for r in rows if r.kind == "deliver.email"],
                "webhook": [hook_id(r) for r in rows if r.kind == "deliver.webhook"],
            }

    def statuses(self) -> Counter[str]:
        from matchmaking.models import OutboxEvent

        with self.db() as session:
            return Counter(str(s) for s in session.scalars(select(OutboxEvent.status)))

    def wait_settled(self, emails: int, webhooks: int, timeout: float, what: str, interval: float = 0.2) -> None:
        """Wait until ``settled``; on a timeout, say what was owed, what arrived and how the last
        worker's log ends (a CI failure must be readable without the run's files)."""
        try:
            wait_until(lambda: self.settled(emails=emails, webhooks=webhooks), timeout, interval, what)
        except AssertionError as exc:
            log = self.workers[-1].log()[-4000:] if self.workers else ""
            raise AssertionError(f"{exc}: {self.tally()} {self.statuses()}\n{log}") from None

    def settled(self, emails: int, webhooks: int) -> bool:
        owed = self.owed()
        if len(owed["email"]) < emails or len(owed["webhook"]) < webhooks:
            return False
        got_mail = self.smtp.counts() if self.smtp else Counter()
        got_hooks = self.hooks.accepted() if self.hooks else Counter()
        statuses = self.statuses()
        return (all(got_mail[m] for m in owed["email"]) and all(got_hooks[h] for h in owed["webhook"])
                and statuses.get("pending", 0) == 0)

    def tally(self) -> dict[str, int]:
        owed = self.owed()
        got_mail = self.smtp.counts() if self.smtp else Counter()
        got_hooks = self.hooks.accepted() if self.hooks else Counter()
        return {
            "emails_owed": len(owed["email"]),
            "webhooks_owed": len(owed["webhook"]),
            "emails_lost": sum(1 for m in owed["email"] if not got_mail[m]),
            "emails_doubled": sum(got_mail[m] - 1 for m in owed["email"] if got_mail[m] > 1),
            "webhooks_lost": sum(1 for h in owed["webhook"] if not got_hooks[h]),
            "webhooks_doubled": sum(got_hooks[h] - 1 for h in owed["webhook"] if got_hooks[h] > 1),
            "unexpected_emails": sum(1 for m in got_mail if m not in set(owed["email"])),
            "failed_rows": self.statuses().get("failed", 0),
        }


def email_id(row: Any, domain: str = "avaloirs.example.fr") -> str:
    """The Message-ID a delivery row sends: of the row for grouped ones, of the notice before."""
    if "notification_ids" in row.payload:
        return f"<notices-{row.id}@{domain}>"
    return f"<notification-{row.payload['notification_id']}@{domain}>"


def hook_id(row: Any) -> str:
    if "notification_ids" in row.payload:
        return f"msg_d{row.id}"
    return f"msg_{row.payload['notification_id']}"


def report(name: str, tally: dict[str, int]) -> None:
    """Print the tally and keep it in test-output/ for the record."""
    line = f"{name}: " + " ".join(f"{k}={v}" for k, v in tally.items())
    print(line)
    out = ROOT / "test-output"
    out.mkdir(exist_ok=True)
    with open(out / "worker-faults.txt", "a") as f:
        f.write(time.strftime("%Y-%m-%d %H:%M:%S ") + line + "\n")


# --- fixtures (imported by the end-to-end test modules) -------------------------------------------


@pytest.fixture()
def redis_server() -> Iterator[RedisServer]:
    redis_or_skip()
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture()
def receivers() -> Iterator[tuple[SmtpSink, WebhookReceiver]]:
    smtp, hooks = SmtpSink().start(), WebhookReceiver().start()
    yield smtp, hooks
    smtp.stop()
    hooks.stop()


@pytest.fixture()
def rig_factory(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    """rig_factory(broker_url, smtp, hooks) → a Rig on a scratch database, closed afterwards."""
    stack = contextlib.ExitStack()
    rigs: list[Rig] = []

    def make(broker_url: str | None, smtp: SmtpSink | None, hooks: WebhookReceiver | None) -> Rig:
        url = stack.enter_context(scratch_database(tmp_path))
        rig = Rig(tmp_path, url, broker_url, smtp, hooks)
        rigs.append(rig)
        return rig

    try:
        yield make
    finally:
        for rig in rigs:
            rig.close()
        stack.close()
