from matchmaking.matching import text


def test_fold_removes_case_accents_and_ligatures() -> None:
    assert text.fold("Drêches Œufs Mâchefer") == "dreches oeufs machefer"


def test_tokenize_drops_elisions_stop_words_and_plurals() -> None:
    assert text.tokenize("L'huile de la friture et les cendres") == ["huile", "friture", "cendre"]
    assert text.tokenize("ashes and batteries") == ["ash", "battery"]
    assert text.stem("métaux") == text.stem("métal") or text.stem(text.fold("métaux")) == "metal"


def test_french_and_english_terms_meet_on_one_concept() -> None:
    pairs = [
        ("sciure", "sawdust"),
        ("chambre à air", "inner tube"),
        ("copeaux", "shavings"),
        ("drêches", "spent grain"),
        ("marc de café", "coffee grounds"),
        ("palettes", "pallets"),
        ("lactosérum", "whey"),
        ("petit-lait", "whey"),
        ("ferraille", "scrap metal"),
        ("carton", "cardboard"),
        ("mâchefer", "bottom ash"),
        ("cendres volantes", "fly ash"),
        ("laitier", "slag"),
        ("boues", "sludge"),
    ]
    for fr, en in pairs:
        a = text.analyse(fr).concepts
        b = text.analyse(en).concepts
        assert a and set(a) & set(b), (fr, en, a, b)


def test_typos_and_abbreviations_are_tolerated() -> None:
    assert "inner_tubes" in text.analyse("chambre a aire").concepts
    assert "cardboard" in text.analyse("carton ondulé").concepts
    assert "pallets" in text.analyse("12 pal. cassées").concepts
    assert "plaque" in text.analyse("plq de plâtre").tokens
    assert "wood_shavings" in text.analyse("copaux de bois").concepts
    assert "whey" in text.analyse("lactoserm").concepts


def test_unknown_words_are_left_alone() -> None:
    assert text.analyse("Verneuil Halatte").tokens == ("verneuil", "halatte")


def test_generic_words_weigh_nothing_and_rare_words_weigh_more() -> None:
    assert text.idf_weight("dechet") == 0.0
    assert text.idf_weight("lactoserum") > text.idf_weight("boue")


def test_cosine_bounds() -> None:
    a = {"x": 1.0, "y": 2.0}
    assert abs(text.cosine(a, a) - 1.0) < 1e-9
    assert text.cosine(a, {"z": 1.0}) == 0.0
    assert text.cosine({}, a) == 0.0
