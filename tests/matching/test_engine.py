import random

from matchmaking.matching.engine import Index
from matchmaking.matching.records import Listing

MATERIALS = [
    "sciure",
    "palettes",
    "carton",
    "ferraille",
    "lactosérum",
    "drêches",
    "pneus",
    "verre",
    "fumier",
    "plastique PE",
]
USES = ["litière", "alimentation animale", "recyclage", "combustible", "réemploi", "compost", "calage"]


def random_listings(n: int, seed: int) -> list[Listing]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = "offer" if i % 2 == 0 else "need"
        title = rng.choice(MATERIALS) + ("" if kind == "offer" else " pour " + rng.choice(USES))
        out.append(
            Listing(
                id=i,
                kind=kind,
                title=title,
                lat=48 + rng.random(),
                lon=-1 + rng.random() * 2,
                radius_km=rng.choice([None, 30.0, 80.0]) if kind == "need" else None,
                annual_tonnes=rng.choice([None, 1.0, 10.0, 100.0]),
                hazardous=kind == "offer" and rng.random() < 0.1,
                accepts_hazardous=kind == "need" and rng.random() < 0.3,
            )
        )
    return out


def test_match_equals_exhaustive_scoring() -> None:
    listings = random_listings(300, 1)
    index = Index.build(listings)
    for listing in listings[:40]:
        fast = [(i, round(s, 9)) for i, s, _ in index.match(listing, k=10)]
        slow = [(i, round(s, 9)) for i, s in index.exhaustive_top(listing.id, k=10)]
        assert fast == slow


def test_rematch_all_agrees_with_match() -> None:
    listings = random_listings(200, 2)
    index = Index.build(listings)
    everything = index.rematch_all(k=5)
    assert set(everything) == {x.id for x in listings}
    for listing in listings[:30]:
        one = [(i, round(s, 9)) for i, s, _ in index.match(listing, k=5)]
        assert [(i, round(s, 9)) for i, s in everything[listing.id]] == one


def test_add_update_remove() -> None:
    listings = random_listings(50, 3)
    index = Index.build(listings)
    need = Listing(1000, "need", "Litière pour chevaux", lat=48.5, lon=0.0, radius_km=100)
    offer = Listing(1001, "offer", "Copeaux de rabotage", lat=48.5, lon=0.01)
    index.add(need)
    index.add(offer)
    assert index.match(need, k=1)[0][0] == 1001
    index.update(Listing(1001, "offer", "Batteries au plomb", lat=48.5, lon=0.01))
    assert all(i != 1001 for i, _, _ in index.match(need, k=10))
    index.remove(1001)
    assert 1001 not in index
    index.compact()
    assert all(i != 1001 for i, _, _ in index.match(need, k=10))


def test_search_filters_radius_and_family() -> None:
    index = Index.build(
        [
            Listing(1, "offer", "Sciure de bois", lat=48.40, lon=-0.20),
            Listing(2, "offer", "Sciure de bois", lat=45.76, lon=4.83),
            Listing(3, "offer", "Carton", lat=48.40, lon=-0.21),
        ]
    )
    hits = [h[0] for h in index.search("sciure", kind="offer", lat=48.4, lon=-0.2, radius_km=50)]
    assert hits[0] == 1 and 2 not in hits
    wood = index.search("copeaux ou carton", kind="offer", family="paper_cardboard")
    assert [h[0] for h in wood] == [3]


def test_search_leaves_out_the_searchers_own_listings_and_explains_only_what_it_returns() -> None:
    listings = [Listing(i, "offer", "Sciure de bois", lat=48.40 + i / 1000, lon=-0.20) for i in range(1, 31)]
    index = Index.build(listings)
    everything = [h[0] for h in index.search("sciure", kind="offer", k=30)]
    mine = set(everything[:12])
    hits = index.search("sciure", kind="offer", k=10, exclude=mine)
    assert [h[0] for h in hits] == [i for i in everything if i not in mine][:10]
    # Within a radius, each hit's explained distance is inside it, as before filtering moved ahead.
    near = index.search("sciure", kind="offer", lat=48.40, lon=-0.20, radius_km=1.5, k=30)
    assert near and all(h[2].distance_km is not None and h[2].distance_km <= 1.5 for h in near)
    assert len(near) == sum(1 for x in listings if round(111.2 * (x.lat - 48.40), 1) <= 1.5)


def test_search_of_both_kinds_is_the_best_of_each_merged() -> None:
    listings = [Listing(i, "offer" if i % 2 else "need", f"Sciure de bois {'sèche ' * (i % 3)}", lat=48.4, lon=-0.2)
                for i in range(1, 21)]
    index = Index.build(listings)
    both = index.search("sciure sèche", kind=None, k=6)
    each = index.search("sciure sèche", kind="offer", k=6) + index.search("sciure sèche", kind="need", k=6)
    assert both == sorted(each, key=lambda h: (-h[1], h[0]))[:6]
    assert {index.get(h[0]).kind for h in both} == {"offer", "need"}  # type: ignore[union-attr]
