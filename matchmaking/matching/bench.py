"""Performance benchmark of the matching engine on synthetic listings.

Listings are generated the way firms write them: French and English material terms, typos,
abbreviations, a List-of-Waste code now and then, a description for some (logistics words shared
across materials), the firm's NAF code (as the service passes it), quantities and rhythms, radii
from 20 km to none given (250 km), and sites clustered around towns across France.
``run_bench`` reports build, full rematch, single-listing match, search and code-suggestion
latencies, peak memory, the recall of the fast path against exhaustive scoring on a subsample,
and a brute-force rapidfuzz comparison. Build and rematch also give their CPU time and the load
average of the machine: on a shared machine the wall-clock time depends on the others.
"""

from __future__ import annotations

import os
import random
import resource
import sys
import time
from collections.abc import Sequence

import numpy as np
from rapidfuzz import fuzz, process

from matchmaking.matching.engine import Index
from matchmaking.matching.records import NEED, OFFER, Listing
from matchmaking.matching.taxonomy import suggest_codes

# (name, lat, lon, weight): prefecture-size towns and the CCMA's own, weighted by size.
TOWNS: Sequence[tuple[str, float, float, float]] = (
    ("Paris", 48.857, 2.352, 10),
    ("Lyon", 45.764, 4.836, 5),
    ("Marseille", 43.296, 5.370, 5),
    ("Toulouse", 43.605, 1.444, 4),
    ("Lille", 50.629, 3.057, 4),
    ("Bordeaux", 44.838, -0.579, 4),
    ("Nantes", 47.218, -1.554, 4),
    ("Strasbourg", 48.573, 7.752, 3),
    ("Rennes", 48.117, -1.678, 3),
    ("Rouen", 49.443, 1.099, 3),
    ("Grenoble", 45.188, 5.724, 3),
    ("Montpellier", 43.611, 3.877, 3),
    ("Le Mans", 48.006, 0.199, 2),
    ("Laval", 48.073, -0.770, 2),
    ("Alençon", 48.432, 0.091, 2),
    ("Villaines-la-Juhel", 48.345, -0.278, 1),
    ("Pré-en-Pail", 48.460, -0.198, 1),
    ("Mayenne", 48.303, -0.614, 1),
    ("Caen", 49.183, -0.371, 3),
    ("Angers", 47.478, -0.563, 3),
    ("Tours", 47.394, 0.685, 3),
    ("Orléans", 47.903, 1.909, 3),
    ("Dijon", 47.322, 5.041, 2),
    ("Clermont-Ferrand", 45.778, 3.087, 2),
    ("Limoges", 45.834, 1.261, 2),
    ("Reims", 49.258, 4.032, 2),
    ("Metz", 49.119, 6.176, 2),
    ("Nancy", 48.692, 6.184, 2),
    ("Brest", 48.390, -4.486, 2),
    ("Poitiers", 46.580, 0.340, 2),
    ("Pau", 43.295, -0.371, 1),
    ("Perpignan", 42.688, 2.895, 1),
    ("Besançon", 47.238, 6.024, 2),
    ("Amiens", 49.894, 2.296, 2),
    ("Saint-Étienne", 45.440, 4.387, 2),
    ("Le Havre", 49.494, 0.108, 2),
    ("Nice", 43.710, 7.262, 3),
    ("Avignon", 43.949, 4.806, 1),
    ("Dunkerque", 51.034, 2.377, 2),
    ("Fos-sur-Mer", 43.438, 4.945, 1),
)

# (offer wordings, need wordings, family, code, NAF codes of firms that offer it, of firms that want it)
MATERIALS: Sequence[tuple[Sequence[str], Sequence[str], str, str | None, Sequence[str], Sequence[str]]] = (
    (
        ("sciure de bois", "sciure et copeaux", "sawdust", "copeaux de rabotage", "sciur de bois"),
        ("litière pour volailles", "litière chevaux", "animal bedding", "combustible chaudière bois"),
        "wood",
        "03 01 05",
        ("16.10A", "31.01Z", "16.23Z"),
        ("01.47Z", "01.43Z", "35.30Z"),
    ),
    (
        ("palettes cassées", "pal. bois", "palettes usagées", "used pallets", "palletes"),
        ("palettes à réparer", "pallets for refurbishment", "bois pour réemploi"),
        "wood",
        "15 01 03",
        ("46.90Z", "52.10B", "10.71A"),
        ("16.24Z", "88.10C", "35.30Z"),
    ),
    (
        ("cartons ondulés", "carton", "cardboard boxes", "cartton d'emballage", "crt ondulé"),
        ("carton pour calage", "cardboard for packaging", "papier carton à recycler"),
        "paper_cardboard",
        "15 01 01",
        ("47.11F", "52.10B", "46.39B"),
        ("17.21A", "82.92Z", "17.12Z"),
    ),
    (
        ("chutes de chambres à air", "chambre a aire", "inner tubes", "chutes de caoutchouc"),
        ("caoutchouc pour palettes", "rubber for mats", "caoutchouc recyclé"),
        "rubber",
        "19 12 04",
        ("22.11Z", "45.20A", "29.32Z"),
        ("22.19Z", "38.32Z", "32.30Z"),
    ),
    (
        ("pneus usagés", "used tyres", "pneumatiques"),
        ("pneus pour combustible cimenterie", "tyres for rubber crumb"),
        "rubber",
        "16 01 03",
        ("45.20A", "45.32Z", "38.31Z"),
        ("23.51Z", "38.32Z"),
    ),
    (
        ("ferraille", "chutes d'acier", "scrap metal", "feraille", "tournures acier"),
        ("ferrailles pour aciérie", "steel scrap for melting"),
        "ferrous_metals",
        "12 01 01",
        ("25.62B", "28.22Z", "29.10Z"),
        ("24.10Z", "38.32Z", "46.77Z"),
    ),
    (
        ("chutes d'aluminium", "aluminium scrap", "canettes alu"),
        ("aluminium pour refonte", "aluminium for remelting"),
        "non_ferrous_metals",
        "12 01 03",
        ("25.62B", "25.50B", "11.07A"),
        ("24.42Z", "24.53Z"),
    ),
    (
        ("lactosérum", "petit-lait", "whey", "lactoserum doux"),
        ("alimentation des porcs", "pig feed", "aliment bétail"),
        "food_organics",
        "02 05 01",
        ("10.51C", "10.51A"),
        ("01.46Z", "35.21Z", "10.91Z"),
    ),
    (
        ("drêches de brasserie", "spent grain", "drèches humides"),
        ("aliment pour bovins", "cattle feed", "ration vaches laitières"),
        "food_organics",
        "02 07 04",
        ("11.05Z",),
        ("01.41Z", "01.42Z", "35.21Z"),
    ),
    (
        ("marc de café", "coffee grounds", "marc de cafe"),
        ("substrat champignons", "mushroom substrate", "compostage"),
        "food_organics",
        None,
        ("56.10A", "56.30Z", "10.83Z"),
        ("01.13Z", "38.21Z"),
    ),
    (
        ("cendres volantes", "fly ash", "cendre volante charbon"),
        ("matière première cimenterie", "cement raw material", "liant routier"),
        "ashes_slags",
        "10 01 02",
        ("35.11Z", "35.30Z"),
        ("23.51Z", "23.61Z", "42.11Z"),
    ),
    (
        ("mâchefers", "bottom ash", "machefer"),
        ("sous-couche routière", "road base material"),
        "ashes_slags",
        "19 01 12",
        ("38.21Z", "35.11Z"),
        ("42.11Z", "08.12Z"),
    ),
    (
        ("laitier de haut fourneau", "BF slag", "laitier granulé"),
        ("ajout cimentaire", "cement additive", "granulats routiers"),
        "ashes_slags",
        "10 02 02",
        ("24.10Z",),
        ("23.51Z", "42.11Z"),
    ),
    (
        ("boues de station d'épuration", "sewage sludge", "boues step"),
        ("épandage agricole", "méthanisation", "land spreading"),
        "sludges",
        "19 08 05",
        ("37.00Z", "84.11Z"),
        ("01.11Z", "35.21Z", "38.21Z"),
    ),
    (
        ("huiles de friture usagées", "used cooking oil", "huile alimentaire usagée"),
        ("biodiesel", "production de biocarburant"),
        "oils_fats",
        "20 01 25",
        ("56.10A", "10.41A", "10.85Z"),
        ("20.59Z", "19.20Z"),
    ),
    (
        ("huiles de vidange", "waste oil", "huile moteur usagée"),
        ("régénération huiles", "combustible four"),
        "mineral_oils",
        "13 02 05*",
        ("45.20A", "49.41A"),
        ("38.22Z", "19.20Z"),
    ),
    (
        ("fumier de cheval", "horse manure", "fumier pailleux"),
        ("compostage", "champignonnière", "méthaniseur agricole"),
        "manure_slurry",
        "02 01 06",
        ("01.43Z", "93.19Z"),
        ("01.13Z", "38.21Z", "35.21Z"),
    ),
    (
        ("film plastique PE", "stretch film", "housses plastique", "film étirable"),
        ("PE pour extrusion", "plastic film recycling", "granulés PE"),
        "plastics",
        "15 01 02",
        ("46.90Z", "52.10B", "47.11F"),
        ("22.22Z", "38.32Z", "22.21Z"),
    ),
    (
        ("verre", "calcin", "bouteilles en verre", "glass cullet"),
        ("calcin pour verrerie", "glass for remelting"),
        "glass",
        "15 01 07",
        ("56.30Z", "11.02B", "55.10Z"),
        ("23.13Z", "38.32Z"),
    ),
    (
        ("textiles usagés", "chutes de tissu", "used clothing"),
        ("chiffons d'essuyage", "effilochage", "isolant textile"),
        "textiles",
        "04 02 22",
        ("14.13Z", "13.92Z", "96.01A"),
        ("13.99Z", "88.10C", "38.32Z"),
    ),
    (
        ("gravats", "béton concassé", "rubble"),
        ("remblai", "sous-couche routière"),
        "inert_minerals",
        "17 01 07",
        ("43.11Z", "41.20A"),
        ("42.11Z", "08.12Z"),
    ),
    (
        ("déchets verts", "green waste", "tontes"),
        ("compostage", "paillage"),
        "green_waste",
        "20 02 01",
        ("81.30Z", "84.11Z"),
        ("38.21Z", "01.13Z"),
    ),
    (
        ("pain invendu", "unsold bread", "baguettes invendues"),
        ("aliment vaches", "bière au pain", "pig feed"),
        "food_organics",
        "02 06 01",
        ("10.71C", "47.11F"),
        ("01.41Z", "11.05Z", "01.46Z"),
    ),
    (
        ("plâtre", "plaques de plâtre", "plasterboard", "plq de plâtre"),
        ("gypse recyclé", "plâtre pour cimenterie"),
        "gypsum_plaster",
        "17 08 02",
        ("43.31Z", "41.20A"),
        ("23.62Z", "23.51Z"),
    ),
)
FREQUENCIES = ("once", "weekly", "monthly", "quarterly", "yearly", None)
# What firms add in the description field: logistics and condition, in both languages. These
# words are shared by listings of unrelated materials, as in real descriptions.
DESCRIPTIONS = (
    "Stockage sous abri, enlèvement sur site à prévoir",
    "Disponible toute l'année, quantité variable selon la production",
    "Collecte possible par nos soins dans un rayon de 30 km",
    "Produit propre, sans indésirables, analyses disponibles",
    "Stored outdoors, collection by the buyer",
    "Available all year round, regular quantities",
    "Chargement sur le quai par nos équipes",
    "Contact : responsable environnement du site",
    "Livraison possible, transport à définir ensemble",
    "Gisement régulier, contrat annuel souhaité",
    "Besoin récurrent, qualité constante exigée",
    "Looking for a local supplier, regular deliveries",
)


ALL_NAF = tuple(sorted({code for m in MATERIALS for code in (*m[4], *m[5])}))


def _typo(rng: random.Random, text: str) -> str:
    if len(text) < 6 or rng.random() > 0.15:
        return text
    i = rng.randrange(1, len(text) - 1)
    op = rng.random()
    if op < 0.4:
        return text[:i] + text[i + 1 :]
    if op < 0.7:
        return text[:i] + text[i] + text[i:]
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def generate(offers: int, needs: int, seed: int) -> list[Listing]:
    """Synthetic offers and needs (ids 0..offers-1 are offers, the rest needs)."""
    rng = random.Random(seed)
    weights = [t[3] for t in TOWNS]
    out: list[Listing] = []
    for i in range(offers + needs):
        kind = OFFER if i < offers else NEED
        town = rng.choices(TOWNS, weights=weights)[0]
        lat = town[1] + rng.gauss(0, 0.15)
        lon = town[2] + rng.gauss(0, 0.2)
        offer_words, need_words, family, code, offer_naf, need_naf = rng.choice(MATERIALS)
        # Most firms are found in the SIRENE register; some work outside the usual sectors.
        naf_choices = offer_naf if kind == OFFER else need_naf
        draw = rng.random()
        naf = rng.choice(naf_choices) if draw < 0.75 else rng.choice(ALL_NAF) if draw < 0.9 else None
        description = " ; ".join(rng.sample(DESCRIPTIONS, rng.choice((1, 1, 2)))) if rng.random() < 0.4 else ""
        if kind == OFFER:
            title = _typo(rng, rng.choice(offer_words))
            low_code = code if rng.random() < 0.5 else None
        else:
            title = _typo(rng, rng.choice(need_words))
            if rng.random() < 0.3:
                title = rng.choice(offer_words) + " pour " + title
            low_code = None
        freq = rng.choice(FREQUENCIES)
        lot = round(rng.lognormvariate(0.0, 1.5), 3) if rng.random() < 0.6 else None
        annual = round(rng.lognormvariate(2.5, 1.8), 2) if rng.random() < 0.6 else None
        out.append(
            Listing(
                id=i,
                kind=kind,
                title=title,
                description=description,
                low_code=low_code,
                family=family if rng.random() < 0.4 else None,
                hazardous=bool(code and code.endswith("*")) and kind == OFFER,
                accepts_hazardous=kind == NEED and rng.random() < 0.2,
                lat=lat,
                lon=lon,
                radius_km=rng.choice((20.0, 50.0, 50.0, 100.0, 150.0, None)) if kind == NEED else None,
                annual_tonnes=annual,
                lot_tonnes=lot,
                frequency=freq,
                sector_naf=naf,
            )
        )
    return out


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) * 1000.0 if values else 0.0


def _load() -> str:
    """The machine's load average over the last minute (other processes share the cores)."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:  # pragma: no cover - not on every platform
        return "?"


def _peak_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def recall_against_exhaustive(listings: list[Listing], sample: int, k: int, seed: int) -> float:
    """Share of the exhaustive top-k found by the full rematch, over ``sample`` listings."""
    index = Index.build(listings)
    fast = index.rematch_all(k)
    rng = random.Random(seed)
    chosen = rng.sample([x.id for x in listings], min(sample, len(listings)))
    found = total = 0
    for listing_id in chosen:
        exact = {i for i, _ in index.exhaustive_top(listing_id, k)}
        got = {i for i, _ in fast.get(listing_id, [])}
        total += len(exact)
        found += len(exact & got)
    return found / total if total else 1.0


def run_bench(offers: int, needs: int, seed: int = 0) -> str:
    """Run the benchmark and return a human-readable report."""
    lines = [f"bench offers={offers} needs={needs} seed={seed}"]
    t = time.perf_counter()
    listings = generate(offers, needs, seed)
    lines.append(f"generate_s={time.perf_counter() - t:.2f}")

    t, cpu = time.perf_counter(), time.process_time()
    index = Index.build(listings)
    build_s = time.perf_counter() - t
    lines.append(f"index_build_s={build_s:.2f} cpu_s={time.process_time() - cpu:.2f} load={_load()}")

    t, cpu = time.perf_counter(), time.process_time()
    everything = index.rematch_all(10)
    rematch_s = time.perf_counter() - t
    n_matches = everything.pairs()
    lines.append(
        f"rematch_all_top10_s={rematch_s:.2f} cpu_s={time.process_time() - cpu:.2f} load={_load()} "
        f"listings={len(everything)} matches={n_matches}"
    )
    del everything

    rng = random.Random(seed + 1)
    probes = rng.sample(listings, min(300, len(listings)))
    lat_match = []
    for listing in probes:
        t = time.perf_counter()
        index.match(listing, k=10)
        lat_match.append(time.perf_counter() - t)
    lines.append(f"match_ms p50={_pct(lat_match, 50):.2f} p95={_pct(lat_match, 95):.2f}")

    lat_search = []
    for _ in range(300):
        need_words = rng.choice(MATERIALS)[1]
        town = rng.choice(TOWNS)
        query = _typo(rng, rng.choice(need_words))
        t = time.perf_counter()
        index.search(query, kind=OFFER, lat=town[1], lon=town[2], radius_km=rng.choice((30.0, 80.0, None)), k=10)
        lat_search.append(time.perf_counter() - t)
    lines.append(f"search_ms p50={_pct(lat_search, 50):.2f} p95={_pct(lat_search, 95):.2f}")

    lat_code = []
    for j in range(300):
        offer_words = rng.choice(MATERIALS)[0]
        text = _typo(rng, rng.choice(offer_words)) + f" lot {j}"
        t = time.perf_counter()
        suggest_codes(text)
        lat_code.append(time.perf_counter() - t)
    lines.append(f"suggest_code_ms p50={_pct(lat_code, 50):.2f} p95={_pct(lat_code, 95):.2f}")
    lines.append(f"peak_rss_mb={_peak_mb():.0f}")

    sub_o = min(offers, 3000)
    sub_n = min(needs, 3000)
    sub = generate(sub_o, sub_n, seed + 2)
    t = time.perf_counter()
    recall = recall_against_exhaustive(sub, sample=300, k=10, seed=seed)
    lines.append(f"recall_top10_vs_exhaustive={recall:.3f} sample={sub_o}x{sub_n} ({time.perf_counter() - t:.1f}s)")

    bo = [x.title for x in listings[: min(offers, 2000)]]
    bn = [x.title for x in listings[offers : offers + min(needs, 2000)]]
    t = time.perf_counter()
    process.cdist(bo, bn, scorer=fuzz.token_set_ratio, workers=1)
    cd_s = time.perf_counter() - t
    per_pair = cd_s / max(1, len(bo) * len(bn))
    projected = per_pair * offers * needs
    lines.append(
        f"rapidfuzz_cdist_s={cd_s:.2f} on {len(bo)}x{len(bn)}; projected_full_s={projected:.1f}; "
        f"speed_ratio_vs_rematch={projected / rematch_s if rematch_s > 0 else float('inf'):.1f}x"
    )
    lines.append(f"peak_rss_mb_final={_peak_mb():.0f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="matchmaking bench")
    parser.add_argument("--offers", type=int, default=10_000)
    parser.add_argument("--needs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(run_bench(args.offers, args.needs, args.seed))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
