"""An engine explanation (the dict stored on a match or returned by search) in plain words."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import lazy_gettext as _l

from ..matching import scoring

COMPONENT_LABELS: dict[str, Any] = {
    "text": _l("Words in common"),
    "material": _l("Same material"),
    "code": _l("Waste codes"),
    "route": _l("Known recovery route"),
    "distance": _l("Distance"),
    "quantity": _l("Quantities"),
    "availability": _l("Dates of availability"),
}


def explanation(data: Mapping[str, Any] | None) -> scoring.Explanation | None:
    """Rebuild the engine's explanation from its stored dict (None when it is not one)."""
    if not data or "components" not in data:
        return None
    evidence = data.get("evidence") or {}
    try:
        components = [scoring.Component(str(c["name"]), float(c["raw"]), float(c["weight"]),
                                        float(c["contribution"])) for c in data.get("components") or []]
        return scoring.Explanation(
            offer_id=int(data.get("offer_id") or 0),
            need_id=int(data.get("need_id") or 0),
            score=float(data.get("score") or 0.0),
            relevance=float(data.get("relevance") or 0.0),
            context=float(data.get("context") or 0.0),
            components=components,
            gates=list(data.get("gates") or []),
            shared_words=list(evidence.get("shared_words") or []),
            shared_concepts=list(evidence.get("shared_concepts") or []),
            offer_codes=list(evidence.get("offer_codes") or []),
            need_codes=list(evidence.get("need_codes") or []),
            offer_family=evidence.get("offer_family"),
            need_family=evidence.get("need_family"),
            family_relation=evidence.get("family_relation"),
            route=evidence.get("route"),
            distance_km=evidence.get("distance_km"),
            share_of_need=evidence.get("share_of_need"),
            vetoes=[dict(v) for v in data.get("vetoes") or [] if isinstance(v, Mapping)],
            probability=float(data.get("probability") or 0.0),
            model_version=str(data.get("model_version") or ""),
        )
    except (KeyError, TypeError, ValueError):
        return None


def phrase(data: Mapping[str, Any] | None, lang: str, distance_km: float | None = None, *,
           without_distance: bool = False) -> str:
    """A line such as "même famille : caoutchouc · 12 km · couvre 80 % de votre besoin annuel".

    Built from the dict as the viewer may see it (an anonymous listing's distance is already the
    commune's), never from a phrase stored before that scrubbing.
    """
    expl = explanation(data)
    if expl is None:
        return ""
    if distance_km is not None:
        expl.distance_km = distance_km
    if without_distance:
        expl.distance_km = None
    try:
        return scoring.describe(expl, "fr" if lang == "fr" else "en")
    except (KeyError, TypeError, ValueError):
        return ""


def components(data: Mapping[str, Any] | None) -> list[tuple[Any, float, float]]:
    """(label, how well this aspect fits from 0 to 1, its share of the score) for each component."""
    expl = explanation(data)
    if expl is None:
        return []
    return [(COMPONENT_LABELS.get(c.name, c.name), max(0.0, min(1.0, c.raw)), c.contribution)
            for c in expl.components]
