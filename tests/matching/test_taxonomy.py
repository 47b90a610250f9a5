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
