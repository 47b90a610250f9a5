"""The listing record handed to the matching engine by the rest of the application."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

OFFER = "offer"
NEED = "need"
KINDS = (OFFER, NEED)


@dataclass(frozen=True, slots=True)
class Listing:
    """One offer (a by-product a firm gives away or sells) or one need (a material a firm wants).

    Only ``id``, ``kind`` and ``title`` are required; every other field refines the score when
    present and is treated as unknown (neutral) when absent.
    """

    id: int
    kind: str  # "offer" | "need"
    title: str
    description: str = ""
    low_code: str | None = None  # "16 01 03"
    family: str | None = None  # material family slug
    hazardous: bool = False  # offers: the material is hazardous
    accepts_hazardous: bool = False  # needs: the buyer can take hazardous material
    lat: float | None = None
    lon: float | None = None
    radius_km: float | None = None  # needs: hard limit
    annual_tonnes: float | None = None
    lot_tonnes: float | None = None  # tonnes per delivery/lot (quantity of one occurrence)
    frequency: str | None = None  # once|weekly|monthly|quarterly|yearly
    available_from: date | None = None
    available_until: date | None = None
    sector_naf: str | None = None  # the firm's NAF/NACE code, e.g. "16.10A" or "24.10"
    sector_label: str = ""  # free text of the firm's activity, e.g. "Steelworks"
    extra_low_codes: tuple[str, ...] = ()  # further List-of-Waste codes describing the same material

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be 'offer' or 'need', got {self.kind!r}")

    @property
    def is_offer(self) -> bool:
        return self.kind == OFFER

    @property
    def has_point(self) -> bool:
        return self.lat is not None and self.lon is not None


def opposite(kind: str) -> str:
    """The kind a listing of ``kind`` is matched against."""
    return NEED if kind == OFFER else OFFER
