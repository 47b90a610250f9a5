from matchmaking.matching import text


def test_fold_removes_case_accents_and_ligatures() -> None:
    assert text.fold("Drêches Œufs Mâchefer") == "dreches oeufs machefer"


def test_tokenize_drops_elisions_stop_words_and_plurals() -> None:
    assert text.tokenize("L'huile de la friture et les cendres") == ["huile", "friture", "cendre"]
    assert text.tokenize("ashes and tyres") == ["ash", "tyre"]
    assert text.tokenize("métaux") == text.tokenize("métal") == ["metal"]


# Singular and plural as firms write them; the old English-minded rule merged 25 of 31.
PLURALS = [
    ("drêches", "drêche"), ("planches", "planche"), ("bâches", "bâche"), ("pneus", "pneu"),
    ("résidus", "résidu"), ("cendres", "cendre"), ("métaux", "métal"), ("copeaux", "copeau"),
    ("chutes", "chute"), ("palettes", "palette"), ("bouteilles", "bouteille"), ("chambres", "chambre"),
    ("boues", "boue"), ("fumiers", "fumier"), ("lisiers", "lisier"), ("déchets", "déchet"),
    ("gravats", "gravat"), ("tissus", "tissu"), ("films", "film"), ("huiles", "huile"),
    ("cartons", "carton"), ("emballages", "emballage"), ("œufs", "œuf"), ("coquilles", "coquille"),
    ("noyaux", "noyau"), ("journaux", "journal"), ("sciures", "sciure"), ("litières", "litière"),
    ("ferrailles", "ferraille"), ("fûts", "fût"), ("big bags", "big bag"), ("ashes", "ash"),
    ("tyres", "tyre"), ("pallets", "pallet"), ("sludges", "sludge"),
]


def test_singular_and_plural_meet() -> None:
    apart = [(p, s) for p, s in PLURALS if text.tokenize(p) != text.tokenize(s)]
    assert apart == []


def test_lemmas_do_not_merge_different_words() -> None:
    assert text.tokenize("fumer") != text.tokenize("fumier")
    assert text.tokenize("bois") == ["bois"]


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


def test_origin_clauses_name_the_source_not_the_material() -> None:
    assert text.split_origin("Soil separated during sugar beet washing") == ("Soil", "sugar beet washing")
    assert text.split_origin("Lactosérum issu de la fabrication du Comté")[0] == "Lactosérum"
    assert text.split_origin("Sludge from the waste water treatment plant, dewatered") == (
        "Sludge dewatered",
        "the waste water treatment plant",
    )
    assert text.split_origin("Fly ash") == ("Fly ash", "")


def test_a_need_says_what_it_wants_then_what_for() -> None:
    assert text.split_purpose("Raw material for paper manufacturer") == ("Raw material", "paper manufacturer")
    assert text.split_purpose("Aliment pour les vaches") == ("Aliment", "les vaches")
    assert text.split_purpose("For cattle feed") == ("For cattle feed", "")


def test_materials_named_inside_a_use_are_read_as_products() -> None:
    assert "zinc_lead" in text.analyse("Raw material for zinc production").embedded
    assert "glass" in text.analyse("glass fibre production").embedded
    assert text.analyse("cement production").embedded == ()


def test_common_words_are_not_corrected_into_materials() -> None:
    for word, concept in [("place", "gypsum"), ("gamme", "rubber"), ("cidre", "wax"), ("bout", "sludge"),
                          ("fumer", "manure")]:
        assert concept not in text.analyse(word).concepts, word
    assert "inner_tubes" in text.analyse("chambre a aire").concepts
