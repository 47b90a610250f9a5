"""Exchanges typical of the Mont des Avaloirs: the right partner ranks first among distractors."""

from matchmaking.matching.engine import Index
from matchmaking.matching.records import Listing

PAIRS = [
    (
        Listing(
            101,
            "offer",
            "Chutes de chambres à air",
            sector_label="Atelier de réparation de cycles",
            lat=48.38,
            lon=-0.18,
            annual_tonnes=1.5,
        ),
        Listing(
            201,
            "need",
            "Caoutchouc pour patins antidérapants",
            sector_label="Fabrication de palettes",
            sector_naf="16.24Z",
            lat=48.33,
            lon=-0.20,
            radius_km=60,
        ),
    ),
    (
        Listing(102, "offer", "Sciure et copeaux", description="bois non traité, scierie", lat=48.43, lon=-0.09),
        Listing(
            202,
            "need",
            "Litière pour volailles",
            sector_label="Élevage de volailles de Loué",
            sector_naf="01.47Z",
            lat=48.40,
            lon=-0.25,
            radius_km=40,
        ),
    ),
    (
        Listing(103, "offer", "Lactosérum", description="petit-lait de la fromagerie", lat=48.45, lon=-0.30),
        Listing(
            203,
            "need",
            "Alimentation des porcs à l'engraissement",
            sector_label="Élevage porcin",
            sector_naf="01.46Z",
            lat=48.36,
            lon=-0.35,
            radius_km=30,
        ),
    ),
    (
        Listing(104, "offer", "Cartons ondulés d'emballage", lat=48.30, lon=-0.12),
        Listing(
            204,
            "need",
            "Carton pour calage des colis",
            sector_label="Logistique",
            sector_naf="52.29A",
            lat=48.31,
            lon=-0.15,
            radius_km=30,
        ),
    ),
    (
        Listing(
            105,
            "offer",
            "Drêches de brasserie humides",
            sector_label="Brasserie artisanale",
            sector_naf="11.05Z",
            lat=48.41,
            lon=-0.05,
        ),
        Listing(
            205,
            "need",
            "Aliment pour les vaches",
            sector_label="Élevage bovin laitier",
            sector_naf="01.41Z",
            lat=48.44,
            lon=-0.10,
            radius_km=30,
        ),
    ),
    (
        Listing(106, "offer", "Cendres volantes de chaudière charbon", low_code="10 01 02", lat=48.20, lon=-0.30),
        Listing(
            206,
            "need",
            "Matière première pour la fabrication de ciment",
            sector_label="Cimenterie",
            sector_naf="23.51Z",
            lat=48.10,
            lon=-0.50,
            radius_km=150,
        ),
    ),
]


def _index() -> Index:
    return Index.build([x for pair in PAIRS for x in pair])


def test_each_offer_finds_its_partner_first() -> None:
    index = _index()
    for offer, need in PAIRS:
        top = index.match(offer, k=3)
        assert top and top[0][0] == need.id, (offer.title, [(i, round(s, 3)) for i, s, _ in top])


def test_each_need_finds_its_partner_first() -> None:
    index = _index()
    for offer, need in PAIRS:
        top = index.match(need, k=3)
        assert top and top[0][0] == offer.id, (need.title, [(i, round(s, 3)) for i, s, _ in top])


def test_route_is_shown_in_the_explanation() -> None:
    index = _index()
    _, _, expl = index.match(PAIRS[1][0], k=1)[0]
    assert "sciure → litière animale" in expl.phrase("fr")
