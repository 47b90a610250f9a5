import time

from matchmaking.matching import taxonomy


def test_code_proximity_levels() -> None:
    assert taxonomy.code_proximity("16 01 03", "16 01 03") == 1.0
    assert taxonomy.code_proximity("16 01 03", "16 01 04*") == 0.6
    assert taxonomy.code_proximity("16 01 03", "16 02 09") == 0.3
    assert taxonomy.code_proximity("16 01 03", "03 01 05") == 0.0
    assert taxonomy.code_proximity(None, "03 01 05") == 0.0


def test_parse_codes_accepts_several_and_asterisks() -> None:
    assert taxonomy.parse_codes("20 01 08|20 01 25") == ["20 01 08", "20 01 25"]
    assert taxonomy.parse_codes("16 11 01*") == ["16 11 01"]
    assert taxonomy.parse_codes("") == []


def test_family_proximity() -> None:
    assert taxonomy.family_proximity("wood", "wood") == 1.0
    assert 0 < taxonomy.family_proximity("ferrous_metals", "mixed_metals") < 1
    assert taxonomy.family_proximity("wood", "batteries") == 0.0


def test_suggester_finds_codes_in_french_and_english() -> None:
    cases = {
        "sciure et copeaux de bois": "03 01 05",
        "cendres volantes de charbon": "10 01 02",
        "coal fly ash": "10 01 02",
        "mâchefers": "19 01 12",
        "pneus usagés": "16 01 03",
    }
    for query, code in cases.items():
        suggestion = taxonomy.suggest_codes(query)
        assert len(suggestion.codes) <= 5
        assert code in [c for c, _ in suggestion.codes], (query, suggestion)
        assert all(0.0 <= s <= 1.0 for _, s in suggestion.codes)


def test_suggester_gives_the_family() -> None:
    assert taxonomy.suggest_codes("chutes de chambres à air").family == "rubber"
    assert taxonomy.suggest_codes("lactosérum").family == "food_organics"
    assert taxonomy.suggest_codes("").codes == []


def test_suggester_is_fast() -> None:
    taxonomy.suggest_codes("warm up")
    start = time.perf_counter()
    for i in range(50):
        taxonomy.suggest_codes(f"palettes bois cassées lot {i}")
    assert (time.perf_counter() - start) / 50 < 0.02


def test_suggester_picks_the_code_a_french_firm_uses() -> None:
    cases = {
        "lactosérum": {"02 05 01"},
        "palettes cassées": {"15 01 03"},
        "huile de friture usagée": {"20 01 25"},
        "sciure + copeaux": {"03 01 05"},
        "ferraille": {"17 04 05", "19 12 02"},
        "big bags": {"15 01 02", "15 01 05"},
        "verre": {"20 01 02", "15 01 07", "17 02 02"},
        "drêches de brasserie": {"02 07 04"},
        "huiles de vidange": {"13 02 05"},
    }
    for query, codes in cases.items():
        top = taxonomy.suggest_codes(query).codes
        assert top and top[0][0] in codes, (query, top)


def test_inner_tube_offcuts_are_rubber_with_a_clear_first_code() -> None:
    suggestion = taxonomy.suggest_codes("chutes de chambres à air")
    assert suggestion.family == "rubber"
    (first, s1), (_, s2) = suggestion.codes[:2]
    assert first in {"16 01 03", "19 12 04"}
    assert s1 >= s2 + 0.2


def test_preferred_codes_are_real_entries() -> None:
    from matchmaking.matching import nomenclature
    from matchmaking.matching.text import vocabulary

    entries = nomenclature.low_by_code()
    concepts = vocabulary().concepts
    for concept, codes in taxonomy.concept_codes().items():
        assert concept in concepts, concept
        for code, weight in codes:
            assert code in entries and 0.0 < weight <= 1.0, (concept, code)


def test_suggester_p95_latency() -> None:
    queries = [f"{w} lot {i}" for i, w in enumerate(["palettes bois cassées", "lactosérum", "ferraille"] * 40)]
    taxonomy.suggest_codes("warm up")
    times = []
    for q in queries:
        start = time.perf_counter()
        taxonomy.suggest_codes(q)
        times.append(time.perf_counter() - start)
    times.sort()
    assert times[int(0.95 * len(times))] < 0.010
