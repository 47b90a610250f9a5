"""A web worker killed (SIGKILL) in the middle of a request leaves nothing half-written.

A real gunicorn, started with the README's own production command line (read from README.md, so
the two cannot drift), serves the app on PostgreSQL. A firm uploads a CSV import of 2,000 rows
read during the request (several seconds of work in one transaction: the drill raises the limits
under which a file is read in the request, IMPORT_INLINE_ROWS and IMPORT_INLINE_SECONDS; by
default such a file goes to a worker); the web workers are killed at several moments: while the
rows are read and checked, once the transaction has started writing, and late in the writing.
After each kill the firm has either every listing of the file or none, the outbox has an event for
each listing written and no other, and gunicorn's new workers serve the same import to the end.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import io
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from matchmaking.models import Firm, Listing, OutboxEvent
from tests.conftest import make_app

pytestmark = [pytest.mark.postgres, pytest.mark.postgres_only, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ROWS = 10_000  # about 15 s of work in one request on PostgreSQL: room to kill it mid-way
PASSWORD = "correct horse battery"
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture()
def postgres_url() -> Iterator[str]:
    if not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("the crash drill runs on PostgreSQL (the PostgreSQL pass)")
    server = make_url(os.environ["TEST_DATABASE_URL"]).set(drivername="postgresql+psycopg")
    name = f"matchmaking_crash_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _prepare(url: str) -> tuple[str, int]:
    from matchmaking import migrate
    from matchmaking.extensions import db
    from matchmaking.services import seeding
    from tests.factories import make_firm, make_user

    app = make_app(url)
    with app.app_context():
        migrate.upgrade(db.engine)
        seeding.load_reference(db.session)
        firm = make_firm(db.session)
        user = make_user(db.session, firm, password=PASSWORD)
        db.session.commit()
        email, firm_id = user.email, firm.id
        db.session.remove()
        db.engine.dispose()
    return email, firm_id


def _csv(batch: str) -> bytes:
    lines = ["référence;type;titre;description;code déchet;quantité;unité;fréquence;rayon km"]
    for i in range(ROWS):
        kind = "offre" if i % 2 else "besoin"
        lines.append(f"{batch}-{i:05d};{kind};Chutes de bois {batch} {i};Sèches, non traitées;03 01 05;"
                     f"{1 + i % 7},5;t;mensuel;{'40' if i % 2 == 0 else ''}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Browser:
    """Cookies and CSRF tokens, as a browser keeps them."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str, timeout: float = 30) -> str:
        with self.opener.open(self.base + path, timeout=timeout) as response:
            return str(response.read().decode())

    def token(self, path: str) -> str:
        found = TOKEN_RE.search(self.get(path))
        assert found, f"no CSRF token on {path}"
        return found.group(1)

    def sign_in(self, email: str) -> None:
        body = urllib.parse.urlencode({"csrf_token": self.token("/sign-in"), "email": email,
                                       "password": PASSWORD}).encode()
        with self.opener.open(self.base + "/sign-in", data=body, timeout=30) as response:
            assert response.status == 200  # the redirect followed

    def upload(self, content: bytes, timeout: float = 120) -> int:
        boundary = uuid.uuid4().hex
        parts = io.BytesIO()
        for name, value in (("csrf_token", self.token("/listings/import")), ("mode", "all")):
            parts.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
        parts.write(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="annonces.csv"\r\n'
                    "Content-Type: text/csv\r\n\r\n".encode() + content + b"\r\n")
        parts.write(f"--{boundary}--\r\n".encode())
        request = urllib.request.Request(self.base + "/listings/import", data=parts.getvalue(), method="POST",
                                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        try:
            with self.opener.open(request, timeout=timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)


def readme_gunicorn_command() -> str:
    """The gunicorn line of the README's production block, as an operator would paste it."""
    text_ = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text_.split("## Production", 1)[1].split("```", 2)[1]
    lines = [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip().startswith("gunicorn ")]
    assert len(lines) == 1, f"the README's production block should hold one gunicorn line: {lines}"
    return lines[0]


def _worker_pids(master: int, previous: set[int] | None = None, wait: float = 60) -> set[int]:
    """The master's workers once all of them are new (none of `previous`)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        except FileNotFoundError:
            children = []
        pids = {int(p) for p in children}
        if pids and not pids & (previous or set()):
            return pids
        time.sleep(0.05)
    raise AssertionError("gunicorn started no worker")


def _writing(engine: Any, database: str) -> bool:
    """A transaction of the app has written something (it holds a transaction id)."""
    with engine.connect() as conn:
        return bool(conn.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid() "
            "AND backend_xid IS NOT NULL"), {"d": database}))


def _state(engine: Any, firm_id: int) -> tuple[int, int]:
    with engine.connect() as conn:
        listings = conn.scalar(select(func.count()).select_from(Listing).where(Listing.firm_id == firm_id)) or 0
        events = conn.scalar(select(func.count()).select_from(OutboxEvent)) or 0
    return listings, events


def _wait_idle(engine: Any, database: str, wait: float = 30) -> None:
    """PostgreSQL has noticed the dead connection and rolled its transaction back."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and _writing(engine, database):
        time.sleep(0.1)


def test_a_worker_killed_during_an_import_leaves_all_or_nothing(postgres_url: str, tmp_path: Path) -> None:
    email, firm_id = _prepare(postgres_url)
    database = make_url(postgres_url).database
    engine = create_engine(make_url(postgres_url).set(drivername="postgresql+psycopg"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "TEST_DATABASE_URL"}}
    env |= {"DATABASE_URL": postgres_url, "SECRET_KEY": "crash-drill", "MATCHMAKING_RATELIMIT_ENABLED": "false",
            "CELERY_BROKER_URL": f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}", "PORT": str(port),
            # The file is read during the request, as a small one is: that is the request killed here.
            "MATCHMAKING_IMPORT_INLINE_ROWS": str(ROWS), "MATCHMAKING_IMPORT_INLINE_BYTES": str(10 * 1024 * 1024),
            "MATCHMAKING_IMPORT_INLINE_SECONDS": "45",
            "XDG_RUNTIME_DIR": str(tmp_path)}  # gunicorn's control socket: the test's own, not the user's
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"  # this environment's gunicorn
    command = readme_gunicorn_command()
    log = (tmp_path / "gunicorn.log").open("w")
    master = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    outcomes: list[tuple[str, int, float, bool]] = []
    try:
        browser = Browser(f"http://127.0.0.1:{port}")
        ready(browser, tmp_path / "gunicorn.log")
        browser.sign_in(email)
        workers = _worker_pids(master.pid)
        expected_listings = 0
        # When to kill: while the rows are read and checked (no write yet), as soon as the
        # transaction writes, and a while into the writing.
        for when in ("checking", "first write", "writing"):
            batch = uuid.uuid4().hex[:6]
            errors: list[BaseException] = []
            thread = threading.Thread(target=_call, args=(browser.upload, _csv(batch), errors))
            thread.start()
            started = time.monotonic()
            if when == "checking":
                time.sleep(0.3)
            else:
                while not _writing(engine, database):
                    assert thread.is_alive(), f"the import ended before it wrote: {errors}"
                    assert time.monotonic() - started < 120, "the import never started writing"
                    time.sleep(0.01)
                if when == "writing":
                    time.sleep(1.0)
            in_transaction = _writing(engine, database)
            for worker in workers:  # the one serving the upload among them
                os.kill(worker, signal.SIGKILL)
            thread.join(60)
            _wait_idle(engine, database)
            listings, events = _state(engine, firm_id)
            outcomes.append((when, listings - expected_listings, time.monotonic() - started, in_transaction))
            assert listings - expected_listings in (0, ROWS), f"killed while {when}: {listings} listings"
            assert events == listings, f"killed while {when}: {events} outbox events for {listings} listings"
            expected_listings = listings
            workers = _worker_pids(master.pid, previous=workers)
            ready(browser, tmp_path / "gunicorn.log")  # the new workers have booted

        # The new workers take the same kind of import to the end, within the command's timeout.
        started = time.monotonic()
        status = browser.upload(_csv("final"), timeout=600)
        full_import_s = time.monotonic() - started
        assert status == 200
        listings, events = _state(engine, firm_id)
        assert listings == expected_listings + ROWS and events == listings
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(Firm)) == 1
    finally:
        master.send_signal(signal.SIGTERM)
        try:
            master.wait(30)
        except subprocess.TimeoutExpired:
            master.kill()
        log.close()
        engine.dispose()
    report = ROOT / "test-output" / "crash-drill.txt"
    assert shlex.split(command)[0] == "gunicorn"
    report.parent.mkdir(exist_ok=True)
    with report.open("a") as out:
        out.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} command={command!r} rows_per_import={ROWS} "
                  f"full_import_s={full_import_s:.1f} "
                  + " ".join(f"killed_while_{w.replace(' ', '_')}=+{n}_listings"
                             f"{'_writes_open' if open_ else ''}" for w, n, _s, open_ in outcomes) + "\n")


def _call(upload: Any, content: bytes, errors: list[BaseException]) -> None:
    try:
        upload(content)
    except (OSError, http.client.HTTPException) as exc:  # the connection dies with the worker
        errors.append(exc)


def ready(browser: Browser, log: Path, wait: float = 180) -> None:
    """Wait until a worker answers (booting one takes a few seconds, more on a busy machine)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            browser.get("/sign-in", timeout=10)
            return
        except OSError:
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)
