import json

import pytest

from matchmaking.matching.records import Listing
from matchmaking.matching.scoring import WEIGHTS, score_pair


def offer(**kw: object) -> Listing:
    base: dict[str, object] = {
        "id": 1,
        "kind": "offer",
        "title": "Chutes de chambres à air",
        "lat": 48.42,
        "lon": -0.22,
    }
    base.update(kw)
    return Listing(**base)  # type: ignore[arg-type]


def need(**kw: object) -> Listing:
    base: dict[str, object] = {
        "id": 2,
        "kind": "need",
        "title": "Caoutchouc pour patins de palettes",
        "sector_naf": "16.24Z",
        "lat": 48.35,
        "lon": -0.30,
        "radius_km": 50,
    }
    base.update(kw)
    return Listing(**base)  # type: ignore[arg-type]


def test_explanation_sums_to_score_and_is_json() -> None:
    score, expl = score_pair(offer(annual_tonnes=2), need(annual_tonnes=2.5))
    assert 0 < score <= 1
    assert abs(sum(c.contribution for c in expl.components) - score) < 1e-9
    data = json.loads(json.dumps(expl.to_dict()))
    assert {c["name"] for c in data["components"]} == set(WEIGHTS)
    assert data["evidence"]["distance_km"] == pytest.approx(10, abs=1)
    assert data["evidence"]["share_of_need"] == pytest.approx(0.8)
    assert data["evidence"]["route"]["use"] in {"use_pallet_making", "use_rubber_products"}


def test_phrases_in_french_and_english() -> None:
    _, expl = score_pair(offer(annual_tonnes=2), need(annual_tonnes=2.5))
    fr = expl.phrase("fr")
    assert "caoutchouc" in fr and "10 km" in fr and "couvre 80 % de votre besoin annuel" in fr
    assert "covers 80% of the annual need" in expl.phrase("en")


def test_order_of_arguments_does_not_matter() -> None:
    assert score_pair(offer(), need())[0] == score_pair(need(), offer())[0]


def test_hazardous_offer_needs_a_buyer_who_accepts_it() -> None:
    score, expl = score_pair(offer(hazardous=True), need())
    assert score == 0 and expl.gates == ["hazard"]
    assert score_pair(offer(hazardous=True), need(accepts_hazardous=True))[0] > 0


def test_hazardous_code_counts_as_hazardous() -> None:
    assert score_pair(offer(low_code="16 01 07*", title="filtres à huile"), need())[0] == 0


def test_radius_is_a_hard_limit() -> None:
    score, expl = score_pair(offer(lat=45.76, lon=4.83), need())
    assert score == 0 and "radius" in expl.gates
    assert "rayon" in expl.phrase("fr")


def test_too_little_for_one_lot_is_not_a_match() -> None:
    score, expl = score_pair(offer(lot_tonnes=0.02, frequency="monthly"), need(lot_tonnes=5.0))
    assert score == 0 and expl.gates == ["lot"]


def test_closer_is_better() -> None:
    near = score_pair(offer(), need())[0]
    far = score_pair(offer(lat=48.0, lon=-0.6), need())[0]
    assert near > far > 0


def test_unrelated_pair_scores_zero() -> None:
    assert score_pair(offer(title="Batteries au plomb usagées"), need(title="Litière pour volailles"))[0] < 0.05


def test_generic_material_is_read_in_the_light_of_the_source_sector() -> None:
    from matchmaking.matching.scoring import build_profile

    ash = build_profile(Listing(1, "offer", "Boiler ash", sector_label="Sawmill (NACE 16.10)"))
    assert "wood_ash" in ash.analysis.materials and "use_fertiliser" in ash.uses
    sludge = build_profile(Listing(2, "offer", "Sludge", sector_label="Sewage works (NACE 37.00)"))
    assert "sewage_sludge" in sludge.analysis.materials


def test_a_route_to_a_finer_use_serves_its_parent() -> None:
    from matchmaking.matching.scoring import build_profile

    plasterboard = build_profile(Listing(1, "need", "Raw material for plasterboard production"))
    assert plasterboard.uses["use_plaster"] > plasterboard.uses["use_construction"] > 0


def test_sector_flows_favour_the_usual_receiving_industry() -> None:
    slag = Listing(1, "offer", "Slag", sector_label="Steelworks (NACE 24.10)")
    cement = Listing(2, "need", "Raw material", sector_label="Cement works (NACE 23.51)")
    bakery = Listing(3, "need", "Raw material", sector_label="Bakery (NACE 10.71)")
    assert score_pair(slag, cement)[0] > 0.2 > score_pair(slag, bakery)[0]


def test_reuse_takes_the_material_a_need_names_and_any_when_it_names_none() -> None:
    pallets = offer(title="Palettes bois perdues de chantier", sector_naf="41.20A")
    route = next(c for c in score_pair(pallets, need(title="Palettes de réemploi"))[1].components
                 if c.name == "route")
    assert route.raw > 0.5
    _, stones = score_pair(pallets, need(title="Pierres et moellons de réemploi", sector_naf="43.99D"))
    assert next(c for c in stones.components if c.name == "route").raw == 0.0
    assert stones.route is None or stones.route["use"] != "use_reuse"
    _, anything = score_pair(pallets, need(title="Objets pour notre recyclerie", sector_naf="47.79Z"))
    assert anything.route is not None and anything.route["use"] == "use_reuse"


def test_a_need_that_names_its_material_owes_less_to_its_sectors_habits() -> None:
    sludge = offer(title="Boues de station d'épuration chaulées", sector_naf="37.00Z")
    farm = {"sector_naf": "01.50Z", "sector_label": "Polyculture-élevage"}  # spreads sludge on its fields
    _, vague = score_pair(sludge, need(title="Apports pour nos prairies", **farm))
    _, tanks = score_pair(sludge, need(title="Cuves IBC 1000 L", **farm))
    route = {name: next(c.raw for c in e.components if c.name == "route") for name, e in
             (("vague", vague), ("tanks", tanks))}
    assert route["vague"] > 0
    assert route["tanks"] < 0.7 * route["vague"]


def test_the_declared_code_outweighs_a_word_in_passing() -> None:
    # "carcasses" also names car bodies; the animal-tissue code says what these are.
    bones = offer(title="Os et carcasses C3", description="os de découpe, catégorie 3", low_code="02 02 02")
    wrecks = need(title="Épaves / VHU", description="véhicules hors d'usage", sector_naf="38.31Z")
    _score, expl = score_pair(bones, wrecks)
    evidence = expl.to_dict()["evidence"]
    assert "vehicle_parts" not in evidence["shared_concepts"]
    assert evidence["offer_family"] == "animal_by_products"
    assert next(c.raw for c in expl.components if c.name == "material") == 0.0


def test_a_material_named_after_the_head_of_a_title_is_its_origin() -> None:
    sawdust = offer(title="Sciure de palettes", description="sciure de découpe, résineux", low_code="03 01 05")
    pallets = need(title="Palettes pour expédition", description="palettes 80x120 en bon état", sector_naf="25.11Z")
    bedding = need(title="Copeaux litière", description="sciure ou copeaux pour litière", sector_naf="01.47Z")
    to_pallets, _ = score_pair(sawdust, pallets)
    to_bedding, _ = score_pair(sawdust, bedding)
    assert to_bedding > 2 * to_pallets


def test_a_buyer_that_names_its_material_is_not_read_through_what_it_makes() -> None:
    # The pallet maker asks for rubber to cut pads: its pallets are what it makes, not what it takes.
    pallets = offer(title="Palettes bois perdues", description="palettes légères non consignées", low_code="15 01 03")
    tyres = offer(title="Pneus vélo usagés", description="pneus et chambres à air de vélo")
    pads = need()
    from_pallets, expl = score_pair(pallets, pads)
    assert next(c.raw for c in expl.components if c.name == "material") == 0.0
    assert score_pair(tyres, pads)[0] > 1.5 * from_pallets


def _route(o: Listing, n: Listing) -> float:
    return next(c.raw for c in score_pair(o, n)[1].components if c.name == "route")


def test_an_offers_title_names_where_it_comes_from_not_where_it_goes() -> None:
    # "agricoles" says whose tyres these are; a description or a purpose that names a use opens it.
    compost = need(title="Fumier composté", description="fumier pour amendement maraîchage", sector_naf="01.13Z")
    assert _route(offer(title="Pneus agricoles usagés", description="pneus de tracteurs"), compost) == 0.0
    assert _route(offer(title="Pneus agricoles usagés", description="pour amendement des sols"), compost) > 0.0
    assert _route(offer(title="Fumier de bovins pour épandage"), compost) > 0.0


def test_a_feed_material_for_animals_asks_for_feed_not_any_use_on_a_farm() -> None:
    # Bread "pour les porcs" is feed: sawdust, which a farm takes as litter, is no answer, and the
    # law says so; bones are animal by-products, never fed to pigs as they are.
    bread = need(title="Pain sec / invendus boulangerie", description="pain sec pour les porcs", sector_naf="01.46Z")
    sawdust_score, sawdust = score_pair(offer(title="Sciure + copeaux", sector_naf="16.10A"), bread)
    assert sawdust_score == 0.0 and "non_feed_families_to_feed" in {v["rule"] for v in sawdust.to_dict()["vetoes"]}
    bones_score, _ = score_pair(offer(title="Os et carcasses C3", low_code="02 02 02"), bread)
    assert bones_score == 0.0
    assert score_pair(offer(title="Pain invendu", description="pain de la veille"), bread)[0] > 0.3


def test_reuse_and_routes_count_most_for_the_material_a_need_names() -> None:
    pallets = offer(title="Palettes bois perdues", description="palettes légères", low_code="15 01 03")
    broken = need(title="Palettes cassées", description="palettes à réparer", sector_naf="16.24Z")
    plywood = need(title="Contreplaqué de réemploi", description="panneaux > 1 m2", sector_naf="43.32A")
    assert _route(pallets, plywood) < 0.5 * _route(pallets, broken)
    # Another family's route to the use a need names counts less than its own family's.
    grounds = need(title="Marc de café", description="pour compost de champignonnière", sector_naf="01.13Z")
    slurry = _route(offer(title="Lisier de porc", low_code="02 01 06"), grounds)
    assert 0.0 < slurry < 0.6 * _route(offer(title="Marc de café usagé", sector_naf="56.30Z"), grounds)
