"""Large imports run by a worker: queued with the request, read once, reported, all or nothing."""

from __future__ import annotations

import csv
import io
import types
import zipfile

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from openpyxl import Workbook
from sqlalchemy import func, select

from matchmaking.models import ImportJob, ImportStatus, Listing, OutboxEvent, OutboxStatus
from matchmaking.services import import_jobs, imports, relay
from matchmaking.services.import_bounds import ImportLimits
from tests.factories import hostile_workbook, make_firm, make_user
from workers.tasks import run_event

HEADER = ["référence", "type", "titre", "quantité", "unité", "fréquence"]


def _csv(n: int) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(HEADER)
    for i in range(n):
        writer.writerow([f"R{i:05d}", "offre", f"Sciure de chêne {i}", "3", "t", "mensuel"])
    return buffer.getvalue().encode()


def _count(session, firm) -> int:
    return session.scalar(select(func.count()).select_from(Listing).where(Listing.firm_id == firm.id))


def _event(session, job) -> OutboxEvent:
    return session.scalar(select(OutboxEvent).where(OutboxEvent.idempotency_key == f"import-{job.id}"))


@pytest.fixture()
def firm(session):
    firm = make_firm(session)
    session.commit()
    return firm


def test_a_file_is_queued_with_its_event_and_the_worker_writes_it_and_keeps_the_report(session, firm) -> None:
    user = make_user(session, firm)
    job = import_jobs.submit(session, firm, user, "annonces.csv", _csv(30), valid_only=False, locale="fr")
    session.commit()
    event = _event(session, job)
    assert job.status == ImportStatus.queued and event.kind == "import.run" and event.payload == {"job_id": job.id}
    assert relay.task_for(event.kind) == relay.IMPORT_LISTINGS and relay.handler_for(event.kind) is import_jobs.run
    assert _count(session, firm) == 0

    assert run_event(event.id) == "done"
    session.expire_all()
    job = session.get(ImportJob, job.id)
    assert job.status == ImportStatus.done and job.content is None and job.finished_at is not None
    assert job.report["created"] == 30 and job.report["written"] and job.report["file_errors"] == []
    assert _count(session, firm) == 30
    # The listings' own events were written with them, for the matching to follow.
    assert session.scalar(select(func.count()).select_from(OutboxEvent)
                          .where(OutboxEvent.kind == "listing.changed")) >= 30
    assert run_event(event.id) == "skipped"  # a second delivery of the message does nothing


def test_a_hostile_workbook_in_a_job_ends_with_its_french_refusal_and_nothing_written(session, firm) -> None:
    hostile = hostile_workbook()
    job = import_jobs.submit(session, firm, None, "a.xlsx", hostile, valid_only=True, locale="fr")
    session.commit()
    assert run_event(_event(session, job).id) == "done"
    session.expire_all()
    job = session.get(ImportJob, job.id)
    assert job.status == ImportStatus.done and not job.report["written"] and job.content is None
    assert "déclare la plage A1:XFD1048576" in job.report["file_errors"][0]
    assert _count(session, firm) == 0


def test_the_report_is_written_in_the_language_of_who_sent_the_file(session, firm) -> None:
    content = _csv(3).replace(b"mensuel", b"parfois")
    job = import_jobs.submit(session, firm, None, "a.csv", content, valid_only=False, locale="en")
    session.commit()
    run_event(_event(session, job).id)
    session.expire_all()
    report = session.get(ImportJob, job.id).report
    assert report["bad_lines"] == 3 and not report["written"]
    assert [line for line, _column, _message in report["row_errors"]] == [2, 3, 4]
    assert all(message.startswith("Unknown frequency") for _line, _column, message in report["row_errors"])


def test_a_job_whose_first_attempt_never_finished_ends_failed_and_writes_nothing(session, firm) -> None:
    job = import_jobs.submit(session, firm, None, "a.csv", _csv(5), valid_only=False, locale="fr")
    session.commit()
    job.status = ImportStatus.running  # what a worker that died while reading leaves behind
    session.commit()
    event = _event(session, job)
    assert run_event(event.id) == "done"
    session.expire_all()
    job = session.get(ImportJob, job.id)
    assert job.status == ImportStatus.failed and job.content is None
    assert "L’import s’est arrêté avant sa fin" in job.report["file_errors"][0]
    assert session.get(OutboxEvent, event.id).status == OutboxStatus.done
    assert _count(session, firm) == 0


def test_an_import_out_of_time_while_writing_writes_nothing(session, firm, monkeypatch) -> None:
    # A clock that jumps far ahead once the writing has begun: the next check stops the import.
    writing = {"begun": False}

    def monotonic() -> float:
        return 1e12 if writing["begun"] else 0.0

    monkeypatch.setattr(imports, "time", types.SimpleNamespace(monotonic=monotonic))
    seen: list[tuple[str, int]] = []

    def progress(stage: str, done: int, total: int | None) -> None:
        seen.append((stage, done))
        writing["begun"] = writing["begun"] or stage == "writing"

    report = imports.import_listings(session, firm, "a.csv", _csv(450), progress=progress, deadline=1000.0)
    assert ("writing", 0) in seen and not report.written and report.created == 0
    assert "L’import a pris plus de 240 secondes et a été arrêté : rien n’a été écrit" in str(report.file_errors[0])
    session.rollback()
    assert _count(session, firm) == 0


def test_the_job_tells_its_stage_as_it_goes(session, firm, monkeypatch) -> None:
    stages: list[tuple[str | None, int]] = []
    tell = import_jobs._tell

    def spy(session_, job_id, **values):
        tell(session_, job_id, **values)
        stages.append((values.get("stage"), values.get("rows_done", 0)))

    monkeypatch.setattr(import_jobs, "_tell", spy)
    job = import_jobs.submit(session, firm, None, "a.csv", _csv(450), valid_only=False, locale="fr")
    session.commit()
    run_event(_event(session, job).id)
    assert [s for s, _ in stages] == ["reading", "reading", "reading", "checking", "checking", "checking",
                                      "writing"]
    assert ("checking", 400) in stages
    assert _count(session, firm) == 450


def test_only_files_above_the_threshold_go_to_the_worker() -> None:
    limits = ImportLimits(inline_bytes=30_000)
    assert not import_jobs.runs_in_worker(_csv(10), limits)
    assert import_jobs.runs_in_worker(_csv(1000), limits)
    book = Workbook()
    for i in range(400):
        book.active.append(["offre", f"Sciure {i}", 3, "t", "mensuel"])
    buffer = io.BytesIO()
    book.save(buffer)
    assert len(buffer.getvalue()) < 30_000 < sum(i.file_size for i in zipfile.ZipFile(buffer).infolist())
    assert import_jobs.runs_in_worker(buffer.getvalue(), limits)  # judged by its unpacked size
    assert not import_jobs.runs_in_worker(b"PK\x03\x04junk", limits)  # refused at once, during the request


def test_the_import_rule_reads_a_small_file_at_once_and_queues_a_large_one(session, firm) -> None:
    limits = ImportLimits(inline_rows=20)
    report = import_jobs.start(session, firm, None, "a.csv", _csv(20), valid_only=False, locale="fr", limits=limits)
    assert isinstance(report, imports.ImportReport) and report.created == 20
    session.commit()
    job = import_jobs.start(session, firm, None, "b.csv", _csv(21), valid_only=False, locale="fr", limits=limits)
    assert isinstance(job, ImportJob) and job.status == ImportStatus.queued and _event(session, job) is not None
    session.commit()
    assert _count(session, firm) == 20


def test_a_small_file_slower_than_a_request_should_be_goes_to_the_worker_with_nothing_written(
        session, firm, monkeypatch) -> None:
    monkeypatch.setattr(imports, "time", types.SimpleNamespace(monotonic=lambda: 1e12))  # always late
    job = import_jobs.start(session, firm, None, "a.csv", _csv(30), valid_only=False, locale="fr")
    assert isinstance(job, ImportJob)
    session.commit()
    assert _count(session, firm) == 0
    assert session.get(ImportJob, job.id).content == _csv(30)


def test_the_memory_limit_stops_a_growing_process_and_is_lifted_afterwards() -> None:
    with pytest.raises(MemoryError), import_jobs.memory_limit(64 * 1024 * 1024):
        bytearray(512 * 1024 * 1024)
    assert len(bytearray(128 * 1024 * 1024)) == 128 * 1024 * 1024  # the limit is gone


@pytest.mark.parametrize(("error", "message"), [
    (MemoryError, "L’import demandait plus de 1 024 Mo de mémoire et a été arrêté : rien n’a été écrit"),
    (SoftTimeLimitExceeded, "L’import a pris plus de 240 secondes et a été arrêté : rien n’a été écrit"),
])
def test_a_job_out_of_memory_or_time_ends_failed_with_its_reason_and_nothing_written(
        session, firm, monkeypatch, error, message) -> None:
    real = import_jobs.import_listings

    def import_then_fail(session_, firm_, *args, **kwargs):
        real(session_, firm_, *args, **kwargs)  # the listings are flushed, then the limit strikes
        raise error()

    monkeypatch.setattr(import_jobs, "import_listings", import_then_fail)
    job = import_jobs.submit(session, firm, None, "a.csv", _csv(40), valid_only=False, locale="fr")
    session.commit()
    event = _event(session, job)
    assert run_event(event.id) == "done"
    session.expire_all()
    job = session.get(ImportJob, job.id)
    assert job.status == ImportStatus.failed and job.content is None and not job.report["written"]
    assert message in job.report["file_errors"][0].replace("\u202f", " ").replace("\xa0", " ")
    assert session.get(OutboxEvent, event.id).status == OutboxStatus.done  # not tried again
    assert _count(session, firm) == 0


def test_a_job_sent_before_the_address_is_confirmed_keeps_its_listings_as_drafts(session, firm) -> None:
    from matchmaking.models import ListingStatus

    user = make_user(session, firm)
    user.email_confirmed_at = None
    job = import_jobs.submit(session, firm, user, "annonces.csv", _csv(20), valid_only=False, locale="fr")
    session.commit()
    assert run_event(_event(session, job).id) == "done"
    session.expire_all()
    statuses = set(session.scalars(select(Listing.status).where(Listing.firm_id == firm.id)))
    assert _count(session, firm) == 20 and statuses == {ListingStatus.draft}
