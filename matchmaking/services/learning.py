"""What the territory's decisions teach the next model (``matchmaking train --with-decisions``).

A match both firms accepted, or on which an exchange was recorded, is a real pair; one declined for
the wrong material or its quality is a wrong one. A decline for distance or quantity says the
material was right but the exchange was not practical there: the material weights do not learn from
it (the context does, when the model has one to learn). Pairs are read as the firms saw them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ..matching import records
from ..models import Decision, Listing, Match, MatchStatus
from .matching import to_record

# Decline reasons that say the pair itself was wrong.
WRONG_PAIR = frozenset({"wrong_material", "quality"})


def label_of(match: Match) -> int | None:
    """1 (a real pair), 0 (a wrong one) or None (nothing to learn from)."""
    if match.status is MatchStatus.accepted or match.exchanges:
        return 1
    if match.status is MatchStatus.declined:
        reasons = {match.offer_decline_reason, match.need_decline_reason}
        if reasons & WRONG_PAIR:
            return 0
    return None


def decided_pairs(session: Session) -> list[tuple[records.Listing, records.Listing, int]]:
    """(offer, need, label) of every match the firms decided on with something to teach."""
    loads: list[Any] = [selectinload(Match.exchanges)]
    for side in (Match.offer, Match.need):
        loads.append(selectinload(side).selectinload(Listing.site))
        loads.append(selectinload(side).selectinload(Listing.firm))
    query = (
        select(Match)
        .where((Match.status.in_((MatchStatus.accepted, MatchStatus.declined)))
               | (Match.offer_decision == Decision.accepted))
        .options(*loads)
        .order_by(Match.id)
    )
    out: list[tuple[records.Listing, records.Listing, int]] = []
    for match in session.scalars(query):
        label = label_of(match)
        if label is not None:
            out.append((to_record(match.offer), to_record(match.need), label))
    return out


def model_card() -> dict[str, Any]:
    """What the CCMA pages say of the model that scores the matches: its version, when it was
    trained, the shown threshold and its grouped cross-validation beside plain TF-IDF."""
    from ..matching import ranker, training

    model = ranker.model()
    cv = model.figures.get("cv", {})
    rows = []
    for method in (training.LEARNERS[0].name, "TF-IDF"):
        for style in ("heavy", "sme"):
            m = cv.get(method, {}).get(style)
            if m and m.get("rows"):
                rows.append({"method": method, "style": style, **m})
    return {
        "version": model.version,
        "trained_at": model.trained_at,
        "threshold": model.threshold,
        "rows": rows,
        "labelled": model.figures.get("labelled_cv", {}),
        "examples": model.figures.get("examples", {}),
    }
