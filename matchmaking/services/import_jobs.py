"""Bulk imports run by a worker: the request stores the file and returns, the page follows the job.

A small file is still imported during the request (its report comes at once); a larger one
becomes an ImportJob and an outbox event in the same transaction, so the import starts once the
request has committed, whatever the broker does meanwhile. The worker reads the file within the
same ImportLimits, tells the job's stage as it goes, and stores the report in the language of the
person who sent the file. A job is tried once: a worker that died or ran out of time leaves it
failed, with nothing written, and the firm sends the file again.
"""

from __future__ import annotations

import io
import time
import zipfile
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, has_app_context
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import Connection, update
from sqlalchemy.orm import Session

from ..models import Firm, ImportJob, ImportStatus, OutboxEvent, User, utcnow
from . import outbox
from .import_bounds import FileProblem, ImportLimits, check_archive
from .imports import ImportReport, import_listings

EVENT = "import.run"
MAX_STORED_ROW_ERRORS = 1000  # the page shows as many, and says how many more there were


def runs_in_worker(content: bytes, limits: ImportLimits) -> bool:
    """Whether reading this file may take longer than a request should: its size, unpacked for a workbook."""
    size = len(content)
    if content.startswith(b"PK\x03\x04") and zipfile.is_zipfile(io.BytesIO(content)):
        try:
            with check_archive(content, limits) as archive:
                size = sum(member.file_size for member in archive.infolist())
        except FileProblem:
            return False  # refused at once by the checks, during the request
    return size > limits.inline_bytes


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
    if limits is None:
        limits = ImportLimits.from_config(current_app.config) if has_app_context() else ImportLimits()
    content, filename, valid_only, locale = job.content, job.filename, job.valid_only, job.locale
    started = utcnow()
    _tell(session, job_id, status=ImportStatus.running, stage="reading", started_at=started)

    def progress(stage: str, done: int, total: int | None) -> None:
        if stage != "writing" or done == 0:  # nothing is written before the first listing
            _tell(session, job_id, stage=stage, rows_done=done, rows_total=total)

    report = import_listings(session, firm, filename, content, valid_only=valid_only, limits=limits,
                             progress=progress, deadline=time.monotonic() + limits.max_seconds)
    if not report.written:
        session.rollback()  # whatever was flushed before a stop; the claim is already committed
    with force_locale(locale):
        stored = serialise(report)
    job = session.get(ImportJob, job_id, populate_existing=True)  # as the progress left it
    if job is None:
        return "job gone"
    job.started_at = started
    _finish(job, ImportStatus.done, stored)
    return f"created {report.created}, updated {report.updated}, skipped {report.skipped}"


def _finish(job: ImportJob, status: ImportStatus, report: dict[str, Any]) -> None:
    job.status = status
    job.report = report
    job.content = None
    job.stage = None
    job.finished_at = utcnow()


def stopped_report(job: ImportJob) -> dict[str, Any]:
    with force_locale(job.locale):
        message = str(_l("The import stopped before its end (the server was interrupted or the file took too "
                         "long): nothing was written. Send the file again, or split it into smaller ones."))
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
