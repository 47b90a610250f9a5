"""The law's vetoes: each stops the pairs it names, says why with its reference, and stops nothing else."""

from pathlib import Path

import pytest

from matchmaking.matching import law
from matchmaking.matching.engine import Index
from matchmaking.matching.records import NEED, OFFER, Listing
from matchmaking.matching.scoring import GATE_LAW, score_pair

PIG_FARM = ("Élevage porcin", "01.46Z")
POULTRY = ("Élevage de volailles de Loué", "01.47Z")
DAIRY = ("Élevage de vaches laitières", "01.41Z")


def offer(title: str, description: str = "", code: str | None = None, sector: tuple[str, str | None] = ("", None),
          **kw: object) -> Listing:
    return Listing(id=1, kind=OFFER, title=title, description=description, low_code=code, sector_label=sector[0],
                   sector_naf=sector[1], **kw)  # type: ignore[arg-type]


def need(title: str, sector: tuple[str, str | None] = ("", None), description: str = "") -> Listing:
    return Listing(id=2, kind=NEED, title=title, description=description, sector_label=sector[0],
                   sector_naf=sector[1], accepts_hazardous=True)


FORBIDDEN = [
    (offer("Huile de friture usagée", code="20 01 25", sector=("Restaurant", "56.10A")),
     need("Coproduits pour l'alimentation des porcs", PIG_FARM), "catering_to_feed"),
    (offer("Restes de repas de la cantine", sector=("Restauration collective", "56.29A")),
     need("Aliment pour cochons", PIG_FARM), "catering_to_feed"),
    (offer("Copeaux de tournage acier", sector=("Mécanique de précision", "25.62B")),
     need("Litière pour poulaillers", POULTRY), "metals_to_feed_or_bedding"),
    (offer("Lisier de porcs", code="02 01 06", sector=PIG_FARM),
     need("Aliment du bétail", DAIRY), "manure_to_feed_or_bedding"),
    (offer("Boues de la station d'épuration", code="19 08 05"),
     need("Litière pour les vaches", DAIRY), "sludge_to_feed_or_bedding"),
    (offer("Films d'enrubannage usagés", sector=DAIRY),
     need("Litière pour chevaux", ("Centre équestre", "93.19Z")), "plastics_to_feed_or_bedding"),
    (offer("Chutes de panneaux agglomérés mélaminés", sector=("Menuiserie", "16.23Z")),
     need("Plaquettes pour chaudière bois 150 kW", ("Serre maraîchère", "01.13Z")), "treated_wood_to_small_boiler"),
    (offer("Bois peint de démolition", code="17 02 04*"),
     need("Litière pour volailles", POULTRY), "treated_wood_to_animals"),
    (offer("Cadavres d'animaux de l'élevage", sector=DAIRY),
     need("Matière organique pour méthaniseur", ("Méthanisation agricole", "35.21Z")), "abp_cat12_untreated"),
    (offer("Solvants usagés", code="14 06 03*"),
     need("Amendement organique à épandre", ("Culture de céréales", "01.11Z")), "hazardous_to_food_soil_animals"),
    (offer("Sciure de bois", sector=("Scierie", "16.10A")),
     need("Aliment pour les porcs", PIG_FARM), "non_feed_families_to_feed"),
    (offer("Fumier de volailles", sector=POULTRY), need("Litière pour veaux", DAIRY), "manure_to_feed_or_bedding"),
    (offer("Sandwichs et quiches invendus", sector=("Boulangerie", "10.71C")),
     need("Pain sec pour porcs", PIG_FARM), "meat_fish_foodstuffs_to_feed"),
    (offer("Os et carcasses C3", "os de découpe, catégorie 3", code="02 02 02", sector=("Boucherie", "10.13A")),
     need("Pain sec / invendus boulangerie", PIG_FARM, "pain sec pour les porcs"), "meat_fish_foodstuffs_to_feed"),
    (offer("Sciure + copeaux", sector=("Scierie", "16.10A")),
     need("Pain sec / invendus boulangerie", PIG_FARM, "pain sec pour les porcs"), "non_feed_families_to_feed"),
    (offer("Biscuits en sachets non conformes", sector=("Biscuiterie", "10.72Z")),
     need("Biscuits pour génisses", DAIRY), "packaged_food_to_feed"),
    (offer("Boues de STEP chaulées", code="19 08 05"),
     need("Fumure pour cultures maraîchères", ("Maraîchage", "01.13Z")), "sludge_digestate_to_food_crops"),
    (offer("Terres polluées aux hydrocarbures"), need("Terre végétale", ("Paysagiste", "81.30Z")),
     "polluted_soil_to_growing"),
    (offer("Sacs d'engrais vides"), need("Sacs pour farine", ("Meunerie", "10.61A")), "chemicals_to_food_contact"),
    (offer("Plaques fibrociment amiante"), need("Tôles pour couvrir un abri", DAIRY), "asbestos_anywhere"),
    (offer("Batteries plomb usagées"), need("Plomb pour lests de pêche", ("Articles de pêche", "32.30Z")),
     "batteries_to_approved_outlets"),
    (offer("Pneus usagés"), need("Combustible bois pour chaudière 150 kW", ("Serre maraîchère", "01.13Z")),
     "plastics_tyres_to_biomass_boiler"),
    (offer("Huile de vidange", code="13 02 05*"), need("Chauffage de l'atelier", ("Menuiserie", "16.23Z")),
     "waste_oil_burning"),
    (offer("Lait écarté (antibiotiques)", sector=DAIRY),
     need("Lait cru pour fromage fermier", ("Fromagerie", "10.51C")),
     "antibiotic_milk_to_food"),
    (offer("Paille moisie", sector=("Culture de céréales", "01.11Z")),
     need("Fourrage grossier pour génisses", DAIRY), "mouldy_to_feed"),
    (offer("traverses bois créosotées"), need("Bois pour aire de jeux", ("Camping", "55.30Z")),
     "creosote_cca_to_public_contact"),
    (offer("Chutes de plaques de plâtre"), need("Litière pour logettes", DAIRY), "gypsum_to_bedding"),
    (offer("Plastique broyé de pare-chocs", code="16 01 19"),
     need("Granulés pour bacs alimentaires", ("Plasturgie", "22.29A")), "recycled_plastics_to_food_contact"),
    (offer("Chutes de cuir tanné", code="04 01 08"),
     need("Peaux pour friandises à chiens", ("Aliments pour animaux de compagnie", "10.92Z")),
     "tanned_leather_to_feed"),
    (offer("Cendres volantes", code="10 01 15"), need("Amendement pour potager", ("Commune", "84.11Z")),
     "fly_ash_to_food_chain"),
    (offer("Viscères de volailles", sector=("Abattoir de volailles", "10.12Z")),
     need("Matière pour compost", ("Plateforme de compostage", "38.21Z")), "animal_by_products_unprocessed_to_soil"),
    (offer("Biodéchets de cantine", "restes de repas et épluchures", sector=("Restauration collective", "56.29A")),
     need("Déchets verts à composter", ("Plateforme de compostage", "38.21Z"), "sans agrément sanitaire"),
     "catering_to_unapproved_compost_biogas"),
    (offer("Pots de yaourts non conformes", "yaourts en pots plastique avec opercules", code="02 05 01"),
     need("Produits laitiers pour soupe", PIG_FARM), "packaged_food_to_feed"),
    (offer("Palettes souillées", "imprégnées d'huile de coupe et de coulures de peinture", code="15 01 03"),
     need("Broyat de bois pour chaufferie", ("Chaufferie bois", "35.30Z")), "treated_wood_to_small_boiler"),
]

ALLOWED = [
    (offer("Fumier de bovins", sector=DAIRY), need("Intrants pour méthaniseur", ("Méthanisation agricole", "35.21Z"))),
    (offer("Lactosérum", code="02 05 01", sector=("Fromagerie", "10.51C")), need("Aliment pour porcs", PIG_FARM)),
    (offer("Pain rassis invendu", sector=("Boulangerie", "10.71C")), need("Aliment pour porcs", PIG_FARM)),
    (offer("Sciure et copeaux", description="Sciure de résineux sèche, non traitée, en big bag",
           sector=("Scierie", "16.10A")), need("Litière pour volailles", POULTRY)),
    (offer("Palettes bois cassées non traitées"), need("Bois pour chaudière", ("Serre maraîchère", "01.13Z"))),
    (offer("Huile de friture usagée", code="20 01 25", sector=("Restaurant", "56.10A")),
     need("Huiles usagées pour biocarburant", ("Fabrication de biodiesel", "20.59Z"))),
    # A fertiliser plant processes what it takes: the hazardous-to-soil rule does not stop it.
    (offer("Sulfate d'ammonium", code="06 03 14", sector=("Sidérurgie", "24.10Z"), hazardous=True),
     need("Matière première pour engrais", ("Fabrication d'engrais", "20.15Z"))),
    # "Feed" of a kiln is no animal feed: the need's activity is industrial.
    (offer("Electric arc furnace filter dust", code="10 02 07*", sector=("Steelworks", "24.10Z")),
     need("Feed for the Waelz kiln", ("Zinc recycling", "24.43Z"))),
    # Negations reach through "ni" and "pas de … de …"; a farm co-op's pallets are not feed.
    (offer("Copeaux de rabotage", description="chêne et frêne massif, sans colle ni vernis"),
     need("Copeaux pour litière lapins", ("Élevage de lapins", "01.49Z"))),
    (offer("Épluchures de légumes", description="légumerie (pas de restes de repas), 1 t/semaine",
           sector=("Légumerie", "10.39A")), need("Coproduits végétaux pour vaches", DAIRY)),
    (offer("Palettes EUR", code="15 01 03"),
     need("Palettes d'occasion", ("Coopérative agricole – négoce de céréales et d'aliments", "46.21Z"),
          "Pour stocker les sacs d'aliment et les big bags de semences.")),
    (offer("Pommes de terre déclassées", sector=("Maraîchage", "01.13Z")), need("Aliment pour bovins viande", DAIRY)),
    # A take-back, a licensed collector, an approved plant, a permitted kiln.
    (offer("Bidons phyto vides", code="15 01 10*"),
     need("Emballages vides de produits phytos", ("Coopérative agricole", "46.21Z"),
          "Collecte EVPP deux fois par an.")),
    (offer("Poteaux CCA déposés", code="17 02 04*"),
     need("Bois traités dangereux", ("Collecte des déchets dangereux", "38.12Z"), "Vers incinération agréée.")),
    (offer("Déchets de découpe cat. 3", sector=("Préparation de produits à base de viande", "10.13A")),
     need("Sous-produits animaux C3", ("Fabrication d'aliments pour animaux de compagnie", "10.92Z"))),
    (offer("Viscères de volailles", sector=("Abattoir de volailles", "10.12Z")),
     need("Matière pour compost", ("Plateforme de compostage", "38.21Z"), "Plateforme avec agrément sanitaire.")),
    (offer("Pneus usagés"), need("Combustible de substitution", ("Cimenterie", "23.51Z"))),
    (offer("Coquilles d'huîtres"), need("Amendement calcaire", ("Culture de céréales", "01.11Z"))),
    # Catering waste goes to an approved plant; a restaurant's cardboard is no catering waste.
    (offer("Biodéchets de cantine", "restes de repas et épluchures", sector=("Restauration collective", "56.29A")),
     need("Biodéchets pour méthaniseur", ("Méthanisation agricole", "35.21Z"), "agrément sanitaire, hygiénisation")),
    (offer("Cartons d'emballage aplatis", sector=("Restauration traditionnelle", "56.10A")),
     need("Déchets à composter", ("Plateforme de compostage", "38.21Z"))),
    (offer("Marc de café", "~20 kg/semaine, en seaux", sector=("Café-bar", "56.30Z")),
     need("Biodéchets pour compost", ("Plateforme de compostage", "38.21Z"))),
]


@pytest.mark.parametrize(("o", "n", "rule"), FORBIDDEN, ids=[r for _o, _n, r in FORBIDDEN])
def test_the_law_vetoes_with_its_reason_and_reference(o: Listing, n: Listing, rule: str) -> None:
    score, expl = score_pair(o, n)
    assert score == 0.0 and expl.probability == 0.0
    assert GATE_LAW in expl.gates
    assert rule in [v["rule"] for v in expl.vetoes]
    broken = next(v for v in expl.vetoes if v["rule"] == rule)
    assert broken["reference"] and broken["reason_fr"] and broken["reason_en"]
    assert broken["reason_fr"] in expl.phrase("fr")


@pytest.mark.parametrize(("o", "n"), ALLOWED, ids=[o.title for o, _n in ALLOWED])
def test_legal_exchanges_are_not_vetoed(o: Listing, n: Listing) -> None:
    _score, expl = score_pair(o, n)
    assert GATE_LAW not in expl.gates, expl.vetoes


def test_the_index_never_returns_a_vetoed_pair() -> None:
    oil = Listing(id=1, kind=OFFER, title="Huile de friture usagée", low_code="20 01 25", lat=48.4, lon=-0.1)
    pigs = Listing(id=2, kind=NEED, title="Coproduits pour l'alimentation des porcs", sector_naf="01.46Z",
                   sector_label="Élevage porcin", lat=48.41, lon=-0.1)
    biodiesel = Listing(id=3, kind=NEED, title="Huiles alimentaires usagées pour biodiesel", sector_naf="20.59Z",
                        lat=48.42, lon=-0.1)
    index = Index.build([oil, pigs, biodiesel])
    assert [other for other, _s, _e in index.match(oil, k=10)] == [3]
    assert index.match(pigs, k=10) == []
    assert 2 not in {n for n, _s in index.rematch_all(k=10).get(1, [])}


def test_every_rule_has_reasons_and_a_reference() -> None:
    rules = law.rules().rules
    assert len(rules) >= 10
    for rule in rules:
        assert rule.uses and rule.offer and rule.reason_fr and rule.reason_en and rule.reference, rule.id


def test_a_denied_word_does_not_count() -> None:
    assert law.affirmed("bois non traité, sec") == ("bois", "sec")
    assert law.affirmed("chêne massif, sans colle ni vernis") == ("chene", "massif")
    assert law.affirmed("légumerie (pas de restes de repas), 1 t") == ("legumerie",)
    assert law.affirmed("bois sans étiquette, peint en vert") == ("bois", "peindre", "vert")  # a clause ends it


def test_an_unknown_matcher_is_refused(tmp_path: Path) -> None:
    (tmp_path / law.RULES_FILE).write_text(
        "rule,offer,need_uses,except_need_nace,reason_fr,reason_en,reference\n"
        "x,colour:red,use_animal_feed,,a,b,c\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown matcher"):
        law.rules_in(tmp_path)
