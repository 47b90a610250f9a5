"""The fictitious past of the demo territory (seed/demo/history.csv): matches found between demo
listings over the last 18 months, the firms' decisions, facilitators' follow-up and the exchanges
made, so that a fresh demo shows populated statistics and a facilitation queue.

Dates in the file are relative (months back from the month of loading), so the demo never ages.
Loading twice changes nothing. Nothing is sent: these are past events, not news.
"""

from __future__ import annotations

import calendar
import csv
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import (
    Decision,
    Exchange,
    Firm,
    FollowUp,
    Listing,
    Match,
    MatchStatus,
    MaterialFamily,
    Unit,
)
from . import listings as listing_service
from .visibility import haversine_km

EVENTS = ("found", "interest", "accept", "decline", "introduced", "follow_up", "dropped", "exchange")
# Listings are shown as published a little before the first event that involves them.
PUBLISHED_BEFORE = timedelta(days=21)


@dataclass(frozen=True)
class Event:
    when: date
    event: str
    offer: str
    need: str
    quantity: float | None
    unit: str
    note: str


def event_date(month: int, day: int, today: date) -> date:
    """`month` months before today's month (0 = this one), that day (clamped; never after today)."""
    index = today.year * 12 + today.month - 1 + month
    year, month0 = divmod(index, 12)
    last_day = calendar.monthrange(year, month0 + 1)[1]
    return min(date(year, month0 + 1, min(max(day, 1), last_day)), today)


def read_events(path: Path, today: date) -> list[Event]:
    events = []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["event"] not in EVENTS:
                raise ValueError(f"{path.name}: unknown event {row['event']!r}")
            events.append(Event(
                when=event_date(int(row["month"]), int(row["day"]), today),
                event=row["event"],
                offer=row["offer"],
                need=row["need"],
                quantity=float(row["quantity"]) if row["quantity"] else None,
                unit=row["unit"],
                note=row["note"],
            ))
    events.sort(key=lambda e: (e.when, EVENTS.index(e.event)))
    return events


def _at(day: date, hour: int = 9) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def _status(match: Match) -> MatchStatus:
    if Decision.declined in (match.offer_decision, match.need_decision):
        return MatchStatus.declined
    if match.offer_decision is Decision.accepted and match.need_decision is Decision.accepted:
        return MatchStatus.accepted
    if {match.offer_decision, match.need_decision} & {Decision.interested, Decision.accepted}:
        return MatchStatus.interested
    return MatchStatus.proposed


def load_history(session: Session, demo_dir: Path | None = None, today: date | None = None) -> dict[str, int]:
    """Apply seed/demo/history.csv to the demo listings (load_demo first). Returns counts written."""
    from ..matching import nomenclature

    demo_dir = demo_dir or nomenclature.seed_dir() / "demo"
    today = today or datetime.now(UTC).date()
    events = read_events(demo_dir / "history.csv", today)
    listings = {
        listing.reference: listing
        for listing in session.scalars(select(Listing).join(Firm).where(Firm.demo.is_(True)))
        if listing.reference
    }
    densities = {slug: density for slug, density in session.execute(
        select(MaterialFamily.slug, MaterialFamily.density_t_per_m3))}

    first_seen: dict[str, date] = {}
    found_on: dict[tuple[str, str], date] = {}
    for e in events:
        for ref in (e.offer, e.need):
            if ref not in listings:
                raise ValueError(f"history.csv: no demo listing {ref!r}")
            first_seen.setdefault(ref, e.when)
        if e.event == "found":
            found_on[(e.offer, e.need)] = e.when
    missing = {(e.offer, e.need) for e in events} - set(found_on)
    if missing:
        raise ValueError(f"history.csv: pairs without a 'found' event: {sorted(missing)}")

    counts: dict[str, int] = defaultdict(int)
    pair_ids = [(listings[o].id, listings[n].id) for o, n in found_on]
    loaded = session.scalar(
        select(Exchange.id).join(Match).where(
            Match.offer_id.in_([o for o, _ in pair_ids]), Match.need_id.in_([n for _, n in pair_ids])
        ).limit(1)
    )
    if loaded is not None:
        # Already loaded (perhaps months ago, when relative dates meant other days): keep it as is.
        return {"demo history matches": 0, "demo history exchanges": 0, "demo listings dated back": 0}
    for ref, seen in first_seen.items():
        listing = listings[ref]
        published = _at(seen - PUBLISHED_BEFORE)
        if listing.published_at is None or listing.published_at > published:
            listing.published_at = published
            if listing.confirmed_at is None or listing.confirmed_at > published:
                listing.confirmed_at = published
            counts["listings dated back"] += 1

    matches: dict[tuple[str, str], Match] = {}
    for (offer_ref, need_ref), found in found_on.items():
        offer, need = listings[offer_ref], listings[need_ref]
        match = session.scalar(select(Match).where(Match.offer_id == offer.id, Match.need_id == need.id))
        if match is None:
            match = Match(offer=offer, need=need, score=0.5, explanation={}, status=MatchStatus.proposed,
                          offer_decision=Decision.pending, need_decision=Decision.pending,
                          follow_up=FollowUp.proposed)
            session.add(match)
            counts["matches"] += 1
        match.created_at = _at(found)
        if match.distance_km is None:
            match.distance_km = round(haversine_km(offer.site.lat, offer.site.lon, need.site.lat, need.site.lon), 2)
        matches[(offer_ref, need_ref)] = match
    session.flush()

    existing: set[tuple[int, date, float, str]] = set()
    for e in events:
        match = matches[(e.offer, e.need)]
        side = e.note if e.note in ("offer", "need") else None
        if e.event == "found":
            match.score = float(e.note)
        elif e.event in ("interest", "accept", "decline") and side:
            decision = {"interest": Decision.interested, "accept": Decision.accepted,
                        "decline": Decision.declined}[e.event]
            setattr(match, f"{side}_decision", decision)
            match.status = _status(match)
            if match.status is MatchStatus.accepted and match.accepted_at is None:
                match.accepted_at = _at(e.when, 11)
        elif e.event == "introduced":
            match.introduced_at = match.introduced_at or _at(e.when, 10)
            if match.follow_up is FollowUp.proposed:
                match.follow_up = FollowUp.contacted
        elif e.event == "follow_up":
            match.follow_up = FollowUp(e.note)
        elif e.event == "dropped":
            match.follow_up, match.drop_reason = FollowUp.dropped, e.note or None
        elif e.event == "exchange":
            if e.quantity is None:
                raise ValueError(f"history.csv: exchange without a quantity for {e.offer} → {e.need}")
            unit = Unit(e.unit)
            key = (match.id, e.when, round(e.quantity, 6), unit.value)
            if key in existing:
                continue
            family = match.offer.material_family or match.need.material_family
            tonnes = listing_service.lot_tonnes(e.quantity, unit, densities.get(family) if family else None)
            session.add(Exchange(match=match, quantity=e.quantity, unit=unit, tonnes=tonnes, date=e.when,
                                 created_at=_at(e.when, 17)))
            existing.add(key)
            counts["exchanges"] += 1
        match.updated_at = _at(e.when, 12)
    session.flush()
    return {"demo history matches": counts["matches"], "demo history exchanges": counts["exchanges"],
            "demo listings dated back": counts["listings dated back"]}
