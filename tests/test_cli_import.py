"""`matchmaking import-listings`: the import page's checks and limits, from the command line."""


from sqlalchemy import func, select

from matchmaking.cli import import_listings_command
from matchmaking.models import Listing
from tests.factories import hostile_workbook, make_firm


def _count(session, firm) -> int:
    return session.scalar(select(func.count()).select_from(Listing).where(Listing.firm_id == firm.id))


def test_the_command_imports_a_file_and_refuses_a_hostile_one_in_french(app, session, tmp_path, monkeypatch) -> None:
    firm = make_firm(session)
    session.commit()
    good = tmp_path / "annonces.csv"
    good.write_text("type;titre;quantité;unité;fréquence\noffre;Sciure;3;t;mensuel\n", encoding="utf-8")
    runner = app.test_cli_runner()
    result = runner.invoke(import_listings_command, [str(good), "--firm-siret", firm.siret])
    assert result.exit_code == 0, result.output
    assert "1 created" in result.output and _count(session, firm) == 1

    bad = tmp_path / "piege.xlsx"
    bad.write_bytes(hostile_workbook())
    result = runner.invoke(import_listings_command, [str(bad), "--firm-siret", firm.siret])
    assert result.exit_code == 2 and "déclare la plage A1:XFD1048576" in result.output
    # The command reads its limits from the configuration, as the page does.
    monkeypatch.setitem(app.config, "IMPORT_MAX_ROWS", 0)
    result = runner.invoke(import_listings_command, [str(good), "--firm-siret", firm.siret])
    assert result.exit_code == 2 and "Trop de lignes" in result.output
    assert _count(session, firm) == 1


def test_the_command_runs_a_large_file_as_a_job_by_the_page_s_rule_or_leaves_it_to_the_workers(
        app, session, tmp_path, monkeypatch) -> None:
    from matchmaking.models import ImportJob, ImportStatus

    firm = make_firm(session)
    session.commit()
    lines = ["référence;type;titre;quantité;unité;fréquence"] + [f"R{i};offre;Sciure {i};3;t;mensuel" for i in range(5)]
    path = tmp_path / "annonces.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setitem(app.config, "IMPORT_INLINE_ROWS", 2)  # 5 lines: a worker's file
    runner = app.test_cli_runner()
    result = runner.invoke(import_listings_command, [str(path), "--firm-siret", firm.siret])
    assert result.exit_code == 0, result.output
    assert "5 created" in result.output and _count(session, firm) == 5
    session.expire_all()
    job = session.scalar(select(ImportJob).where(ImportJob.firm_id == firm.id))
    assert job.status == ImportStatus.done and job.report["created"] == 5 and job.content is None

    result = runner.invoke(import_listings_command, [str(path), "--firm-siret", firm.siret, "--queue"])
    assert result.exit_code == 0 and "queued for the workers" in result.output
    session.expire_all()
    queued = session.scalars(select(ImportJob).where(ImportJob.status == ImportStatus.queued)).all()
    assert len(queued) == 1 and queued[0].firm_id == firm.id
