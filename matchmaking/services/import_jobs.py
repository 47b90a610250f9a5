"""Bulk imports: the one place that decides whether a file is read now or by a worker.

`start()` is what the import page and `matchmaking import-listings` call. A small file (up to
ImportLimits.inline_bytes, unpacked for a workbook, and inline_rows lines) is imported at once and
its report comes with the answer; it is stopped and handed to a worker if it still takes longer
than inline_seconds, so no import ever holds a web request near the server's timeout. Every
other file becomes an ImportJob and an outbox event in the same transaction, so the import starts
once the caller has committed, whatever the broker does meanwhile.

Small files stay in the request even when a worker is running: the firm gets its report without
a waiting page, and a site run without a worker (`matchmaking run --no-worker`) still imports
them; what a request may cost is bounded by the limits above, not by where the broker is.

The worker reads the file within the same ImportLimits, tells the job's stage as it goes, and
stores the report in the language of the person who sent the file. It is bounded three ways: the
import stops itself past max_seconds, Celery's soft and hard time limits stop a step that hangs,
and the process may not grow past max_memory_bytes more address space while it imports. A job is
tried once: one that ran out of time or memory, or whose worker died, ends failed with nothing
written and a message saying so, and the firm sends the file again (or splits it).
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from flask import current_app, has_app_context
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import Connection, update
from sqlalchemy.orm import Session

from ..models import Firm, ImportJob, ImportStatus, OutboxEvent, User, utcnow
from . import outbox, verification
from .import_bounds import FileProblem, ImportLimits, check_archive, check_workbook, choose_sheet, number
from .imports import ImportReport, fold, import_listings

try:
    import resource
except ImportError:  # not on this system (Windows): the time limits still hold
    resource = None  # type: ignore[assignment]

EVENT = "import.run"
MAX_STORED_ROW_ERRORS = 1000  # the page shows as many, and says how many more there were
log = logging.getLogger(__name__)


def limits_from(config: Any | None = None) -> ImportLimits:
    """The limits of the running application (its IMPORT_* settings), else the defaults."""
    if config is None and has_app_context():
        config = current_app.config
    return ImportLimits.from_config(config) if config is not None else ImportLimits()


def runs_in_worker(content: bytes, limits: ImportLimits) -> bool:
    """Whether this file is read by a worker: more than inline_rows lines, or inline_bytes (unpacked)."""
    if content.startswith(b"PK\x03\x04") and zipfile.is_zipfile(io.BytesIO(content)):
        try:
            with check_archive(content, limits) as archive:
                size = sum(member.file_size for member in archive.infolist())
            if size > limits.inline_bytes:
                return True
            # Small once unpacked: counting its lines costs a few milliseconds.
            sheets = check_workbook(content, limits, fold).sheets
        except FileProblem:
            return False  # refused at once by the checks, during the request
        name = choose_sheet(list(sheets), fold)
        lines = sheets[name].last_row if name is not None else 0
        return lines - 1 > limits.inline_rows
    if len(content) > limits.inline_bytes:
        return True
    return content.count(b"\n") - 1 > limits.inline_rows


def publishes(user: User | None) -> bool:
    """Whether an import publishes its listings: until the member who sends it has confirmed their
    e-mail address they are kept as drafts; the command line (no member) publishes."""
    return user is None or verification.is_confirmed(user)


def start(session: Session, firm: Firm, user: User | None, filename: str, content: bytes, *,
          valid_only: bool, locale: str, limits: ImportLimits | None = None) -> ImportReport | ImportJob:
    """Import a file now and return its report, or queue it for a worker and return the job.

    With a report, the caller commits when `report.written` and rolls back otherwise; with a job,
    the caller commits (the worker starts after that).
    """
    limits = limits or limits_from()
    if len(content) <= limits.max_bytes and runs_in_worker(content, limits):
        return submit(session, firm, user, filename, content, valid_only=valid_only, locale=locale)
    report = import_listings(session, firm, filename, content, valid_only=valid_only, limits=limits,
                             publish=publishes(user), deadline=time.monotonic() + limits.inline_seconds)
    if report.out_of_time:
        # Slower than a request should be (a busy database): nothing was written, a worker takes it.
        session.rollback()
        return submit(session, firm, user, filename, content, valid_only=valid_only, locale=locale)
    return report


def submit(session: Session, firm: Firm, user: User | None, filename: str, content: bytes, *,
           valid_only: bool, locale: str) -> ImportJob:
    """Queue an import; the worker starts once the caller has committed."""
    job = ImportJob(firm_id=firm.id, user_id=user.id if user else None, filename=(filename or "")[:255],
                    content=content, valid_only=valid_only, locale=locale if locale in ("fr", "en") else "fr",
                    status=ImportStatus.queued)
    session.add(job)
    session.flush()
    outbox.emit(session, EVENT, {"job_id": job.id}, key=f"import-{job.id}")
    return job


def _tell(session: Session, job_id: int, **values: Any) -> None:
    """Write the job's progress on a connection of its own, committed at once, for the page to read.

    Only before the import writes: on SQLite a second writer would wait for the import's lock.
    """
    bind = session.get_bind()
    engine = bind.engine if isinstance(bind, Connection) else bind
    with engine.begin() as connection:
        connection.execute(update(ImportJob).where(ImportJob.id == job_id).values(**values))


def _address_space() -> int | None:
    """This process's virtual memory size in bytes (Linux), None where it cannot be read."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


@contextlib.contextmanager
def memory_limit(extra_bytes: int) -> Iterator[None]:
    """Let the process grow by at most `extra_bytes` of address space meanwhile (MemoryError past it).

    The limit is the process's: in a prefork or solo worker that is this task alone. The previous
    limit comes back afterwards.
    """
    current = _address_space() if resource is not None and extra_bytes > 0 else None
    if current is None:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    wanted = current + extra_bytes
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft != resource.RLIM_INFINITY:
        wanted = min(wanted, soft)
    resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))
    log.info("address space limited to %s MiB (%s MiB in use)", wanted >> 20, current >> 20)
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def run(session: Session, event: OutboxEvent, limits: ImportLimits | None = None) -> str | None:
    """The outbox handler: read the file, write the listings or nothing, keep the report."""
    job_id = int(event.payload["job_id"])
    job = session.get(ImportJob, job_id)
    if job is None or job.status in (ImportStatus.done, ImportStatus.failed):
        return "nothing to do"
    if job.status == ImportStatus.running or event.attempts > 1:
        # A first attempt began and never finished (its worker died or was stopped): running the
        # same file again would likely end the same way, so the firm is told instead.
        _finish(job, ImportStatus.failed, stopped_report(job))
        return "stopped before its end"
    firm = session.get(Firm, job.firm_id)
    if firm is None or job.content is None:
        _finish(job, ImportStatus.failed, stopped_report(job))
        return "firm or file gone"
    limits = limits or limits_from()
    content, filename, valid_only, locale = job.content, job.filename, job.valid_only, job.locale
    started = utcnow()
    _tell(session, job_id, status=ImportStatus.running, stage="reading", started_at=started)

    def progress(stage: str, done: int, total: int | None) -> None:
        if stage != "writing" or done == 0:  # nothing is written before the first listing
            _tell(session, job_id, stage=stage, rows_done=done, rows_total=total)

    stopped: Any = None
    try:
        with memory_limit(limits.max_memory_bytes):
            report = import_listings(session, firm, filename, content, valid_only=valid_only, limits=limits,
                                     publish=publishes(session.get(User, job.user_id) if job.user_id else None),
                                     progress=progress, deadline=time.monotonic() + limits.max_seconds)
    except MemoryError:
        stopped = _l("The import needed more than %(mb)s MB of memory and was stopped: nothing was written. "
                     "Split the file into smaller ones.", mb=number(limits.max_memory_bytes // (1024 * 1024)))
    except SoftTimeLimitExceeded:  # the task's own limit, when a step hangs past the import's deadline
        soft = int(current_app.config.get("TASK_SOFT_TIME_LIMIT") or limits.max_seconds) if has_app_context() \
            else limits.max_seconds
        stopped = _l("The import took more than %(s)s seconds and was stopped: nothing was written. Split the file "
                     "into smaller ones.", s=number(min(soft, limits.max_seconds)))
    del content
    if stopped is not None:
        session.rollback()
        log.warning("import job %s stopped: %s", job_id, str(stopped))
        job = session.get(ImportJob, job_id, populate_existing=True)
        if job is None:
            return "job gone"
        with force_locale(locale):
            _finish(job, ImportStatus.failed, stopped_report(job, stopped))
        job.started_at = started
        return "stopped: out of memory or time"
    if not report.written:
        session.rollback()  # whatever was flushed before a stop; the claim is already committed
    with force_locale(locale):
        stored = serialise(report)
    job = session.get(ImportJob, job_id, populate_existing=True)  # as the progress left it
    if job is None:
        return "job gone"
    job.started_at = started
    _finish(job, ImportStatus.failed if report.out_of_time else ImportStatus.done, stored)
    return f"created {report.created}, updated {report.updated}, skipped {report.skipped}"


def _finish(job: ImportJob, status: ImportStatus, report: dict[str, Any]) -> None:
    job.status = status
    job.report = report
    job.content = None
    job.stage = None
    job.finished_at = utcnow()


def stopped_report(job: ImportJob, reason: Any = None) -> dict[str, Any]:
    with force_locale(job.locale):
        message = str(reason or _l("The import stopped before its end (the server was interrupted or the file took "
                                   "too long): nothing was written. Send the file again, or split it into smaller "
                                   "ones."))
    return {"filename": job.filename, "rows": 0, "created": 0, "updated": 0, "skipped": 0, "written": False,
            "file_errors": [message], "warnings": [], "row_errors": [], "more_row_errors": 0, "bad_lines": 0}


def serialise(report: ImportReport) -> dict[str, Any]:
    """The report as the page shows it, its messages written out in the current language."""
    return {
        "filename": report.filename, "rows": report.rows, "created": report.created, "updated": report.updated,
        "skipped": report.skipped, "written": report.written,
        "file_errors": [str(m) for m in report.file_errors], "warnings": [str(m) for m in report.warnings],
        "row_errors": [[e.line, e.column, str(e.message)] for e in report.row_errors[:MAX_STORED_ROW_ERRORS]],
        "more_row_errors": max(0, len(report.row_errors) - MAX_STORED_ROW_ERRORS),
        "bad_lines": len(report.bad_lines),
    }


@dataclass(slots=True)
class StoredRowError:
    line: int
    column: str
    message: str


@dataclass(slots=True)
class StoredReport:
    """A job's report with the attributes of an ImportReport, for the same page to show either."""

    filename: str = ""
    rows: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    written: bool = False
    file_errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    row_errors: list[StoredRowError] = field(default_factory=list)
    more_row_errors: int = 0
    bad_line_count: int = 0

    @classmethod
    def load(cls, data: dict[str, Any]) -> StoredReport:
        return cls(
            filename=str(data.get("filename", "")), rows=int(data.get("rows", 0)), created=int(data.get("created", 0)),
            updated=int(data.get("updated", 0)), skipped=int(data.get("skipped", 0)),
            written=bool(data.get("written")), file_errors=list(data.get("file_errors", [])),
            warnings=list(data.get("warnings", [])),
            row_errors=[StoredRowError(int(line), str(column), str(message))
                        for line, column, message in data.get("row_errors", [])],
            more_row_errors=int(data.get("more_row_errors", 0)), bad_line_count=int(data.get("bad_lines", 0)),
        )

    @property
    def bad_lines(self) -> range:  # only its length is shown
        return range(self.bad_line_count)

    @property
    def ok(self) -> bool:
        return not self.file_errors and not self.row_errors
