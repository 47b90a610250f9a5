"""A large import: the request queues it and returns, the page follows it to its report."""

from __future__ import annotations

import csv
import io

from sqlalchemy import func, select

from matchmaking.models import ImportJob, Listing, OutboxEvent
from tests.factories import make_firm, make_user
from tests.web.conftest import sign_in, text, token
from workers.tasks import run_event


def _csv(n: int) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(["référence", "type", "titre", "quantité", "unité", "fréquence"])
    for i in range(n):
        writer.writerow([f"R{i:05d}", "besoin", f"Palettes bois {i}", "40", "unité", "mensuel"])
    return buffer.getvalue().encode()


def test_a_large_file_is_imported_by_the_worker_and_its_page_shows_progress_then_the_report(
        app, client, session, monkeypatch) -> None:
    monkeypatch.setitem(app.config, "IMPORT_INLINE_BYTES", 1_000)
    firm = make_firm(session)
    user = make_user(session, firm)
    session.commit()
    sign_in(client, user)
    data = {"csrf_token": token(client, "/listings/import"), "mode": "all",
            "file": (io.BytesIO(_csv(60)), "annonces.csv")}
    response = client.post("/listings/import", data=data, content_type="multipart/form-data")
    assert response.status_code == 303
    page = response.headers["Location"]
    job = session.scalar(select(ImportJob).where(ImportJob.firm_id == firm.id))
    assert page.endswith(f"/listings/import/{job.id}")
    assert session.scalar(select(func.count()).select_from(Listing).where(Listing.firm_id == firm.id)) == 0

    waiting = client.get(page)
    html = text(waiting)
    assert waiting.status_code == 200 and "Import en cours" in html and "En attente de son tour" in html
    assert '<meta http-equiv="refresh" content="2">' in html

    event = session.scalar(select(OutboxEvent).where(OutboxEvent.idempotency_key == f"import-{job.id}"))
    assert run_event(event.id) == "done"
    done = client.get(page)
    html = text(done)
    assert done.status_code == 200 and "Import terminé" in html and "60 annonces créées" in html
    assert 'http-equiv="refresh"' not in html
    assert session.scalar(select(func.count()).select_from(Listing).where(Listing.firm_id == firm.id)) == 60


def test_the_page_of_another_firms_import_is_not_found(app, client, session, monkeypatch) -> None:
    monkeypatch.setitem(app.config, "IMPORT_INLINE_BYTES", 1_000)
    owner = make_user(session, make_firm(session))
    stranger = make_user(session, make_firm(session))
    session.commit()
    sign_in(client, owner)
    data = {"csrf_token": token(client, "/listings/import"), "file": (io.BytesIO(_csv(60)), "a.csv")}
    page = client.post("/listings/import", data=data, content_type="multipart/form-data").headers["Location"]
    other = app.test_client()
    sign_in(other, stranger)
    assert other.get(page).status_code == 404
    assert other.get("/listings/import/999999").status_code == 404


def test_a_failed_job_says_nothing_was_written(app, client, session, monkeypatch) -> None:
    monkeypatch.setitem(app.config, "IMPORT_INLINE_BYTES", 1_000)
    user = make_user(session, make_firm(session))
    session.commit()
    sign_in(client, user)
    data = {"csrf_token": token(client, "/listings/import"), "file": (io.BytesIO(_csv(60)), "a.csv")}
    page = client.post("/listings/import", data=data, content_type="multipart/form-data").headers["Location"]
    job = session.get(ImportJob, int(page.rsplit("/", 1)[1]))
    from matchmaking.models import ImportStatus

    job.status = ImportStatus.running  # its worker died
    session.commit()
    event = session.scalar(select(OutboxEvent).where(OutboxEvent.idempotency_key == f"import-{job.id}"))
    run_event(event.id)
    html = text(client.get(page))
    assert "L’import s’est arrêté avant sa fin" in html and "rien n’a été écrit" in html


def test_a_running_job_shows_its_stage_and_a_progress_bar_and_keeps_refreshing(app, client, session) -> None:
    from matchmaking.models import ImportStatus

    firm = make_firm(session)
    user = make_user(session, firm)
    job = ImportJob(firm_id=firm.id, user_id=user.id, filename="gros-fichier.xlsx", content=b"x", valid_only=False,
                    locale="fr", status=ImportStatus.running, stage="checking", rows_done=4200, rows_total=20000)
    session.add(job)
    session.commit()
    sign_in(client, user)
    response = client.get(f"/listings/import/{job.id}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "no-store" in response.headers["Cache-Control"]
    assert "Fichier gros-fichier.xlsx." in text(response) and "Vérification des lignes" in text(response)
    assert '<progress max="20000" value="4200">' in html
    assert '<meta http-equiv="refresh" content="2">' in html and 'name="viewport"' in html
