"""Time and memory of hostile and huge imports, request part then worker part, one file per process.

    for case in declared-range empty-rows zip-ratio claimed-size rows-20000; do
        .venv/bin/python -m tests.e2e.import_figures $case
    done

Each run builds a scratch SQLite database (or TEST_DATABASE_URL's PostgreSQL), then does what the
import page and the worker do with the file: import_jobs.start() (the request), then, when the
file was queued, the worker's task function on its outbox event. It prints where the file was
read, each part's time, the process's peak memory before the import (the file built) and after it,
and the outcome.
"""

from __future__ import annotations

import contextlib
import resource
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from tests.services.test_import_limits import (
    SHEET,
    _append_rows,
    _claiming_size,
    _dimension,
    _empty_rows,
    _rewrite,
    _workbook,
)
from tests.workers.harness import scratch_database


def _file(case: str) -> tuple[str, bytes]:
    if case == "declared-range":  # a 5 KB workbook declaring 1,048,576 rows × 16,384 columns
        return "piege.xlsx", _rewrite(_workbook(), _dimension("A1:XFD1048576"))
    if case == "empty-rows":  # 300,000 empty rows: 1 MB packed, 4.5 MB unpacked
        return "vide.xlsx", _rewrite(_workbook(), _append_rows(_empty_rows(3, 300_002)))
    if case == "zip-ratio":  # 20 MB of spaces in a sheet packed into a few KB
        spaces = b" " * (20 * 1024 * 1024)
        return "bombe.xlsx", _rewrite(_workbook(), lambda xml: xml.replace(b"</worksheet>", spaces + b"</worksheet>"))
    if case == "claimed-size":  # a sheet whose zip entry claims 3.8 GB
        return "enorme.xlsx", _claiming_size(_workbook(), SHEET, 0xF000_0000)
    if case.startswith("rows-"):
        from tests.e2e.test_workers_import import _csv

        return "annonces.csv", _csv(int(case.removeprefix("rows-")))
    return "", b""


def main(case: str) -> None:
    from matchmaking.extensions import db
    from matchmaking.models import ImportJob, Listing, OutboxEvent
    from matchmaking.services import import_jobs
    from tests.conftest import make_app
    from tests.factories import make_firm
    from workers.tasks import run_event

    filename, content = _file(case)
    with tempfile.TemporaryDirectory() as tmp, scratch_database(Path(tmp)) as url:
        app = make_app(url)
        with app.test_request_context():
            firm = make_firm(db.session)
            db.session.commit()
            if not content:
                print(f"{case}: nothing imported")
                return
            peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            started = time.perf_counter()
            outcome = import_jobs.start(db.session, firm, None, filename, content, valid_only=False, locale="fr")
            db.session.commit()
            request_s = time.perf_counter() - started
            if isinstance(outcome, ImportJob):
                job_id = outcome.id
                key = f"import-{job_id}"
                event = db.session.scalar(select(OutboxEvent.id).where(OutboxEvent.idempotency_key == key))
                started = time.perf_counter()
                run_event(int(event or 0))
                worker_s = time.perf_counter() - started
                db.session.expire_all()
                job = db.session.get(ImportJob, job_id)
                assert job is not None and job.report is not None
                where, status = "worker", job.status.value
                written, messages = job.report["created"], job.report["file_errors"]
            else:
                worker_s, where, status = 0.0, "request", "done"
                written, messages = outcome.created, [str(m) for m in outcome.file_errors]
            peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            listings = len(db.session.scalars(select(Listing.id).where(Listing.firm_id == firm.id)).all())
            print(f"{case}: {len(content):,} bytes read in the {where}; request {request_s * 1000:.0f} ms, "
                  f"worker {worker_s:.1f} s; peak memory {peak_before // 1024} → {peak_after // 1024} MiB; {status}, "
                  f"{written} listings written ({listings} in the database)"
                  + (f"; « {messages[0]} »" if messages else ""))
            db.session.remove()
            with contextlib.suppress(Exception):
                db.engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "baseline")
