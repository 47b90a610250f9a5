"""Learning the ranker from labelled exchanges, and measuring it honestly.

The data (``seed/training/``):

* exchange files (``*exchanges*.csv``): real, documented exchanges, one row each; the offer is the
  row's waste, its need the row's use; every other need of the same file is a non-pair for it.
  Each row belongs to a group, the source document or case study (the ``group`` column, else the
  case-study part of a MAESTRI id, else the source URL), and to a style, heavy industry or SMEs
  (the ``style`` column, else read from the id);
* ``labelled_pairs.csv``: pairs of the kind a Mayenne territory sees, ``good``, ``absurd`` or
  ``forbidden`` (the law's vetoes must stop these; they are never used to fit the weights);
* ``non_pairs.csv``: an offer of that file with another row's need, drawn at random (two per good
  pair) and reviewed by a person: ``wrong`` ones are negatives for the fit and wrong lines for the
  threshold; ``plausible`` ones (a compost platform offered cardboard) are neither, since counting
  a real outlet as a wrong line would push the threshold up for nothing.

Grouped cross-validation: the groups are split into folds; each fold's rows are ranked by a model
fitted on the other folds only, against every need of their own file, so no case study or source
document is both trained and tested on. The same run ranks them with plain TF-IDF (character
n-grams of the same texts) and with the engine's hand-set weights, so the figures stand side by side.
"""

from __future__ import annotations

import csv
import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from matchmaking.matching import ranker
from matchmaking.matching.records import NEED, OFFER, Listing
from matchmaking.matching.scoring import (
    SECTOR_UNKNOWN,
    Profile,
    build_profile,
    context_components,
    context_fit,
    finish_component,
)
from matchmaking.matching.vectors import FeatureSpace, SideMatrices, component_products, context_arrays

FloatArray = NDArray[np.float64]
SEED = 20261207
FOLDS = 5
PRECISION_TARGET = 0.9  # what is shown is right at least 9 times in 10 on the labelled pairs
NON_PAIRS_PER_GOOD = 2  # drawn non-pairs of the labelled file, per good pair (seed/tools/draw_non_pairs.py)
HARD_NEGATIVES = 5  # per exchange row, the best-scored wrong needs join the calibration
RANDOM_NEGATIVES = 5  # and as many wrong needs drawn at random
STYLES = ("heavy", "sme")
PARKS_LEFT_OUT = ("IS-K", "IS-G", "IS-J")  # Kalundborg, Guitang, Kawasaki: see seed/training/README.md


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def _cell(row: dict[str, str], key: str) -> str:
    return (row.get(key) or "").strip()


def row_style(row: dict[str, str]) -> str:
    style = _cell(row, "style")
    if style in STYLES:
        return style
    head = _cell(row, "id").split("-", 1)[0].upper()
    return "heavy" if head in ("MAESTRI", "IS") else "sme"


def row_group(row: dict[str, str]) -> str:
    group = _cell(row, "group")
    if group:
        return group
    row_id = _cell(row, "id")
    if row_id.startswith("MAESTRI-"):
        return "-".join(row_id.split("-")[:3])  # MAESTRI-<case>-<study>-<row>
    return _cell(row, "source_url") or row_id


@dataclass
class ExchangeFile:
    """One file of exchanges: offers (one per row), its distinct needs, each row's own need."""

    name: str
    offers: list[Listing]
    needs: list[Listing]
    truth: list[int]
    groups: list[str]
    styles: list[str]
    # For each row, the needs that are truths of a row with the same offer text (never non-pairs).
    also_right: list[set[int]] = field(default_factory=list)


def exchange_file(name: str, rows: Sequence[dict[str, str]]) -> ExchangeFile:
    from matchmaking.matching.evaluate import build_listings

    offers, needs, truth = build_listings(rows)
    by_text: dict[str, set[int]] = {}
    for offer, t in zip(offers, truth, strict=True):
        by_text.setdefault(offer.title.lower(), set()).add(t)
    return ExchangeFile(
        name=name,
        offers=offers,
        needs=needs,
        truth=truth,
        groups=[f"{name}:{row_group(r)}" for r in rows],
        styles=[row_style(r) for r in rows],
        also_right=[by_text[o.title.lower()] for o in offers],
    )


@dataclass
class LabelledPairs:
    offers: list[Listing]
    needs: list[Listing]
    labels: list[str]  # good | absurd | forbidden
    reasons: list[str]
    groups: list[str]
    ids: list[str]
    # Reviewed non-pairs judged wrong: (offer row, need row), the offer's group decides the fold.
    non_pairs: list[tuple[int, int]] = field(default_factory=list)


def labelled_pairs(rows: Sequence[dict[str, str]], reviewed: Sequence[dict[str, str]] = ()) -> LabelledPairs:
    offers: list[Listing] = []
    needs: list[Listing] = []
    out = LabelledPairs(offers, needs, [], [], [], [])
    for i, row in enumerate(rows):
        offers.append(
            Listing(
                id=i,
                kind=OFFER,
                title=_cell(row, "offer_title"),
                description=_cell(row, "offer_description"),
                low_code=_cell(row, "offer_ewc_code") or None,
                sector_label=_cell(row, "offer_sector"),
                sector_naf=_naf(_cell(row, "offer_sector")),
            )
        )
        needs.append(
            Listing(
                id=i,
                kind=NEED,
                title=_cell(row, "need_title"),
                description=_cell(row, "need_description"),
                sector_label=_cell(row, "need_sector"),
                sector_naf=_naf(_cell(row, "need_sector")),
                # The law's rules are what this file tests; the hazard gate would hide them.
                accepts_hazardous=True,
            )
        )
        out.labels.append(_cell(row, "label"))
        out.reasons.append(_cell(row, "reason"))
        # Pairs about one offer text stay together (the same material would be learned by heart).
        out.groups.append("labelled:" + _cell(row, "offer_title").lower())
        out.ids.append(_cell(row, "id"))
    row_of = {row_id: i for i, row_id in enumerate(out.ids)}
    for r in reviewed:
        offer_row, need_row = row_of.get(_cell(r, "offer_id")), row_of.get(_cell(r, "need_id"))
        if offer_row is not None and need_row is not None and _cell(r, "verdict") == "wrong":
            out.non_pairs.append((offer_row, need_row))
    return out


def _naf(sector: str) -> str | None:
    """The NAF/NACE code a sector label gives in parentheses ("Scierie (NAF 16.10A)")."""
    import re

    found = re.search(r"\b(\d{2}\.\d{1,2}[A-Z]?)\b", sector)
    return found.group(1) if found else None


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


@dataclass
class TrainingData:
    files: list[ExchangeFile]
    labelled: LabelledPairs | None
    data_hash: str
    decisions: list[tuple[Listing, Listing, int]] = field(default_factory=list)  # (offer, need, 1|0)


def training_dir(seed: Path) -> Path:
    return seed / "training"


def pair_key(row: dict[str, str]) -> tuple[str, str]:
    return (_cell(row, "waste_description").lower(), _cell(row, "input_description").lower())


def load_training(seed: Path, leave_out: frozenset[tuple[str, str]] = frozenset()) -> TrainingData:
    """The repository's training data, less the exchanges of ``leave_out`` (``pair_key``s)."""
    directory = training_dir(seed)
    digest = hashlib.sha256()
    files: list[ExchangeFile] = []
    for path in sorted(directory.glob("*exchanges*.csv")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
        rows = [r for r in read_csv(path)
                if not _cell(r, "id").startswith(PARKS_LEFT_OUT) and pair_key(r) not in leave_out]
        if rows:
            files.append(exchange_file(path.stem, rows))
    labelled = None
    path = directory / "labelled_pairs.csv"
    if path.exists():
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
        reviewed = directory / "non_pairs.csv"
        if reviewed.exists():
            digest.update(reviewed.name.encode() + b"\0" + reviewed.read_bytes())
        labelled = labelled_pairs(read_csv(path), read_csv(reviewed) if reviewed.exists() else [])
    # The knowledge the features are read with (vocabulary, routes, the law) versions the model too.
    for path in sorted(seed.glob("*.csv")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return TrainingData(files, labelled, digest.hexdigest()[:16])


# ---------------------------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------------------------


@dataclass
class PairFeatures:
    """Dense features of every offer × need of a set: ``x[i, j]`` (one column per ``FEATURES``),
    the context factor and whether any gate or veto stops the pair."""

    x: FloatArray  # (offers, needs, features)
    context: FloatArray  # (offers, needs): 1 − share + share × context fit
    allowed: NDArray[np.bool_]  # (offers, needs)
    vetoed: NDArray[np.bool_]  # (offers, needs): the law's vetoes alone


def pair_features(offers: Sequence[Profile], needs: Sequence[Profile]) -> PairFeatures:
    from matchmaking.matching.scoring import CONTEXT_SHARE

    space = FeatureSpace()
    o = SideMatrices.build(list(offers), space, kind=OFFER)
    n = SideMatrices.build(list(needs), space, kind=NEED)
    oi, ni = np.arange(len(offers)), np.arange(len(needs))
    products = component_products(o, oi, n, ni)
    shape = (len(offers), len(needs))
    blocks = {
        comp: finish_component(comp, np.asarray(products[comp].todense(), dtype=np.float64).ravel()).reshape(shape)
        for comp in products
    }
    known = o.sector_known[:, None] & n.sector_known[None, :]
    sector = np.where(known, blocks["sector"], SECTOR_UNKNOWN)
    x = np.stack(
        [blocks["text"], blocks["material"], blocks["code"], blocks["route"], blocks["route"] * sector], axis=-1
    )
    rows = np.repeat(oi, len(ni))
    cols = np.tile(ni, len(oi))
    ctx = context_components(context_arrays(o, rows, n, cols))
    context = ((1.0 - CONTEXT_SHARE) + CONTEXT_SHARE * context_fit(ctx.raw)).reshape(shape)
    return PairFeatures(x, context, ctx.allowed.reshape(shape), ctx.gate_law.reshape(shape))


def scores_with(model_weights: FloatArray, feats: PairFeatures) -> FloatArray:
    """The engine's score of every pair for material weights over ``FEATURES`` (summing to 1)."""
    relevance = feats.x @ model_weights
    result: FloatArray = np.where(feats.allowed, np.clip(relevance * feats.context, 0.0, 1.0), 0.0)
    return result


def normalised(beta: FloatArray) -> FloatArray:
    total = float(beta.sum())
    return beta / total if total > 0 else np.full(len(beta), 1.0 / len(beta))


# ---------------------------------------------------------------------------------------------
# Examples for the fit
# ---------------------------------------------------------------------------------------------


@dataclass
class Examples:
    x: FloatArray
    y: FloatArray
    w: FloatArray
    group: list[str]


def _exchange_examples(f: ExchangeFile, feats: PairFeatures, keep: NDArray[np.bool_]) -> Examples:
    xs, ys, ws, gs = [], [], [], []
    for i in np.flatnonzero(keep):
        t = f.truth[i]
        xs.append(feats.x[i, t])
        ys.append(1.0)
        ws.append(1.0)
        gs.append(f.groups[i])
        wrong = [j for j in range(len(f.needs)) if j not in f.also_right[i]]
        for j in wrong:  # every non-pair, together weighing as much as the pair
            xs.append(feats.x[i, j])
            ys.append(0.0)
            ws.append(1.0 / len(wrong))
            gs.append(f.groups[i])
    return Examples(np.array(xs).reshape(-1, feats.x.shape[-1]), np.array(ys), np.array(ws), gs)


def _labelled_examples(lab: LabelledPairs, feats: PairFeatures, keep: NDArray[np.bool_]) -> Examples:
    xs, ys, ws, gs = [], [], [], []
    for i in (int(k) for k in np.flatnonzero(keep)):
        label = lab.labels[i]
        if label == "forbidden":
            continue  # the law stops these; the weights learn what is relevant, not what is legal
        xs.append(feats.x[i, i])
        ys.append(1.0 if label == "good" else 0.0)
        ws.append(1.0)
        gs.append(lab.groups[i])
    for i, j in lab.non_pairs:
        if keep[i]:
            xs.append(feats.x[i, j])
            ys.append(0.0)
            ws.append(0.5)
            gs.append(lab.groups[i])
    return Examples(np.array(xs).reshape(-1, feats.x.shape[-1]), np.array(ys), np.array(ws), gs)


def good_needs(lab: LabelledPairs) -> dict[str, set[str]]:
    """For each offer text of the labelled file, the need texts it is known to serve."""
    out: dict[str, set[str]] = {}
    for offer, need, label in zip(lab.offers, lab.needs, lab.labels, strict=True):
        if label == "good":
            out.setdefault(offer.title.lower(), set()).add(need.title.lower())
    return out


def draw_non_pairs(lab: LabelledPairs, seed: int = SEED) -> list[tuple[int, int]]:
    """For each good pair, ``NON_PAIRS_PER_GOOD`` needs of other rows drawn for its offer, none a
    need it is known to serve: the candidates a person reviews into ``non_pairs.csv``."""
    rng = random.Random(seed + 1)
    known = good_needs(lab)
    out: list[tuple[int, int]] = []
    for i, label in enumerate(lab.labels):
        if label != "good":
            continue
        served = known.get(lab.offers[i].title.lower(), set())
        candidates = [j for j in range(len(lab.needs)) if j != i and lab.needs[j].title.lower() not in served]
        out.extend((i, j) for j in rng.sample(candidates, min(NON_PAIRS_PER_GOOD, len(candidates))))
    return out


def _concat(parts: Sequence[Examples]) -> Examples:
    parts = [p for p in parts if len(p.y)]
    if not parts:
        return Examples(np.zeros((0, len(ranker.FEATURES))), np.zeros(0), np.zeros(0), [])
    return Examples(
        np.vstack([p.x for p in parts]),
        np.concatenate([p.y for p in parts]),
        np.concatenate([p.w for p in parts]),
        [g for p in parts for g in p.group],
    )


# ---------------------------------------------------------------------------------------------
# Cross-validation
# ---------------------------------------------------------------------------------------------


def fold_of_groups(groups: Sequence[str], folds: int = FOLDS) -> dict[str, int]:
    """Groups to folds, largest first onto the lightest fold (deterministic: sorted by name)."""
    sizes: dict[str, int] = {}
    for g in groups:
        sizes[g] = sizes.get(g, 0) + 1
    load = [0] * folds
    out: dict[str, int] = {}
    for g in sorted(sizes, key=lambda g: (-sizes[g], g)):
        k = min(range(folds), key=lambda f: (load[f], f))
        out[g] = k
        load[k] += sizes[g]
    return out


def ranks_of(scores: FloatArray, truth: Sequence[int]) -> FloatArray:
    """Rank of each row's own need (ties at their middle rank)."""
    out = []
    for i, t in enumerate(truth):
        row = scores[i]
        out.append(float(np.sum(row > row[t]) + (np.sum(row == row[t]) + 1) / 2.0))
    return np.array(out)


def metrics_of(ranks: FloatArray) -> dict[str, float]:
    if len(ranks) == 0:
        return {"rows": 0.0}
    return {
        "rows": float(len(ranks)),
        "hit@1": float(np.mean(ranks <= 1)),
        "hit@5": float(np.mean(ranks <= 5)),
        "hit@10": float(np.mean(ranks <= 10)),
        "MRR": float(np.mean(1.0 / ranks)),
    }


def tfidf_scores(f: ExchangeFile) -> FloatArray:
    """Plain TF-IDF: character 3–5-grams of each offer's and need's texts (title and description;
    the activities only add noise to it), cosine similarity."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    def text(x: Listing) -> str:
        return " ".join(p for p in (x.title, x.description) if p)

    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, lowercase=True)
    vec.fit([text(o) for o in f.offers] + [text(n) for n in f.needs])
    a = vec.transform([text(o) for o in f.offers])
    b = vec.transform([text(n) for n in f.needs])
    return np.asarray((a @ b.T).todense(), dtype=np.float64)


@dataclass
class Learner:
    """One way of learning pair scores from examples, for the comparison (name, fit → scorer)."""

    name: str

    def fit(self, ex: Examples, seed: int) -> Any:
        if self.name == "logistic (weights ≥ 0)":
            beta, _b = ranker.fit_nonnegative_logistic(ex.x, ex.y, ex.w)
            return normalised(beta)
        if self.name == "logistic (scikit-learn)":
            from sklearn.linear_model import LogisticRegression

            return LogisticRegression(C=10.0, max_iter=2000).fit(ex.x, ex.y, sample_weight=ex.w)
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(
            max_iter=200, learning_rate=0.05, max_leaf_nodes=8, monotonic_cst=[1] * ex.x.shape[1], random_state=seed
        ).fit(ex.x, ex.y, sample_weight=ex.w)

    @staticmethod
    def scores(fitted: Any, feats: PairFeatures) -> FloatArray:
        if isinstance(fitted, np.ndarray):
            return scores_with(fitted, feats)
        flat = feats.x.reshape(-1, feats.x.shape[-1])
        p = fitted.predict_proba(flat)[:, 1].reshape(feats.allowed.shape)
        result: FloatArray = np.where(feats.allowed, p * feats.context, 0.0)
        return result


LEARNERS = (Learner("logistic (weights ≥ 0)"), Learner("logistic (scikit-learn)"), Learner("gradient boosting"))


@dataclass
class CrossValidation:
    """Out-of-fold ranks per method and row, and what calibration and the threshold need."""

    ranks: dict[str, list[FloatArray]]  # method → per file, the rank of each row
    files: list[ExchangeFile]
    oof_score: list[float]  # engine (shipped learner) scores on held-out examples …
    oof_label: list[float]  # … their labels …
    oof_weight: list[float]  # … and weights, for the calibration
    labelled_score: FloatArray | None  # held-out score of each labelled pair (0 where vetoed)
    labelled_vetoed: NDArray[np.bool_] | None
    fold_weights: list[FloatArray]
    # Held-out scores of sampled non-pairs of the labelled file (an offer with another row's need),
    # and whether the law vetoes each: the threshold counts them as wrong lines a firm would see.
    non_pair_score: FloatArray | None = None
    non_pair_vetoed: NDArray[np.bool_] | None = None


def cross_validate(data: TrainingData, seed: int = SEED, compare: bool = True) -> CrossValidation:
    rng = random.Random(seed)
    file_feats = [pair_features([build_profile(o) for o in f.offers], [build_profile(n) for n in f.needs])
                  for f in data.files]
    lab = data.labelled
    lab_feats = (pair_features([build_profile(o) for o in lab.offers], [build_profile(n) for n in lab.needs])
                 if lab is not None else None)
    all_groups = [g for f in data.files for g in f.groups] + (lab.groups if lab is not None else [])
    fold = fold_of_groups(all_groups)
    learners = LEARNERS if compare else LEARNERS[:1]
    decisions = decision_examples(data.decisions) if data.decisions else None
    ranks: dict[str, list[FloatArray]] = {m.name: [np.zeros(len(f.offers)) for f in data.files] for m in learners}
    ranks["engine (hand-set weights)"] = []
    ranks["TF-IDF"] = []
    hand = normalised(np.array([ranker.FALLBACK.coefficients[k] for k in ranker.FEATURES]))
    for f, feats in zip(data.files, file_feats, strict=True):
        ranks["engine (hand-set weights)"].append(ranks_of(scores_with(hand, feats), f.truth))
        ranks["TF-IDF"].append(ranks_of(tfidf_scores(f), f.truth))
    oof_s: list[float] = []
    oof_y: list[float] = []
    oof_w: list[float] = []
    lab_score = np.zeros(len(lab.labels)) if lab is not None else None
    non_pairs = lab.non_pairs if lab is not None else []
    non_pair_score = np.zeros(len(non_pairs))
    fold_weights: list[FloatArray] = []
    for k in range(FOLDS):
        parts = [
            _exchange_examples(f, feats, np.array([fold[g] != k for g in f.groups], dtype=bool))
            for f, feats in zip(data.files, file_feats, strict=True)
        ]
        if lab is not None and lab_feats is not None:
            parts.append(_labelled_examples(lab, lab_feats, np.array([fold[g] != k for g in lab.groups])))
        if decisions is not None:
            parts.append(decisions)  # the territory's own pairs are in every fold: they are not tested on
        train = _concat(parts)
        if len(train.y) == 0 or train.y.min() == train.y.max():
            continue
        for m in learners:
            fitted = m.fit(train, seed)
            if m is LEARNERS[0]:
                fold_weights.append(fitted)
            for fi, (f, feats) in enumerate(zip(data.files, file_feats, strict=True)):
                test = np.array([fold[g] == k for g in f.groups], dtype=bool)
                if not test.any():
                    continue
                scores = Learner.scores(fitted, feats)
                r = ranks_of(scores, f.truth)
                ranks[m.name][fi][test] = r[test]
                if m is LEARNERS[0]:
                    _calibration_rows(f, scores, test, rng, oof_s, oof_y, oof_w)
            if m is LEARNERS[0] and lab is not None and lab_feats is not None and lab_score is not None:
                scores = Learner.scores(fitted, lab_feats)
                for i, g in enumerate(lab.groups):
                    if fold[g] != k:
                        continue
                    lab_score[i] = scores[i, i]
                    if lab.labels[i] == "forbidden":
                        continue
                    oof_s.append(float(scores[i, i]))
                    oof_y.append(1.0 if lab.labels[i] == "good" else 0.0)
                    oof_w.append(1.0)
                for n, (i, j) in enumerate(non_pairs):
                    if fold[lab.groups[i]] == k:
                        non_pair_score[n] = scores[i, j]
    return CrossValidation(
        ranks=ranks,
        files=data.files,
        oof_score=oof_s,
        oof_label=oof_y,
        oof_weight=oof_w,
        labelled_score=lab_score,
        labelled_vetoed=np.diag(lab_feats.vetoed).copy() if lab_feats is not None else None,
        fold_weights=fold_weights,
        non_pair_score=non_pair_score if lab is not None else None,
        non_pair_vetoed=(np.array([lab_feats.vetoed[i, j] for i, j in non_pairs], dtype=bool)
                         if lab_feats is not None else None),
    )


def _calibration_rows(
    f: ExchangeFile, scores: FloatArray, test: NDArray[np.bool_], rng: random.Random,
    out_s: list[float], out_y: list[float], out_w: list[float],
) -> None:
    """Each held-out row's pair, its best-scored wrong needs (what a firm would be shown) and as
    many drawn at random: the calibration's view of "a candidate pair"."""
    for i in np.flatnonzero(test):
        out_s.append(float(scores[i, f.truth[i]]))
        out_y.append(1.0)
        out_w.append(1.0)
        wrong = [j for j in range(len(f.needs)) if j not in f.also_right[i]]
        hard = sorted(wrong, key=lambda j: -scores[i, j])[:HARD_NEGATIVES]
        drawn = rng.sample(wrong, min(RANDOM_NEGATIVES, len(wrong)))
        for j in hard + drawn:
            out_s.append(float(scores[i, j]))
            out_y.append(0.0)
            out_w.append(1.0)


def figures(cv: CrossValidation) -> dict[str, Any]:
    """Metrics per method: all rows, per style, per file."""
    out: dict[str, Any] = {}
    for method, per_file in cv.ranks.items():
        entry: dict[str, Any] = {}
        all_ranks = np.concatenate(per_file) if per_file else np.zeros(0)
        styles = np.array([s for f in cv.files for s in f.styles])
        entry["all"] = metrics_of(all_ranks)
        for style in STYLES:
            entry[style] = metrics_of(all_ranks[styles == style])
        entry["files"] = {f.name: metrics_of(r) for f, r in zip(cv.files, per_file, strict=True)}
        out[method] = entry
    return out


# ---------------------------------------------------------------------------------------------
# Calibration, threshold, the model
# ---------------------------------------------------------------------------------------------


def choose_threshold(
    probability: FloatArray, labels: Sequence[str], vetoed: NDArray[np.bool_], target: float = PRECISION_TARGET
) -> tuple[float, dict[str, float]]:
    """The lowest probability from which what is shown of the labelled pairs is right at least
    ``target`` of the time (a vetoed pair is never shown), and what it shows."""
    good = np.array([label == "good" for label in labels])
    wrong = ~good
    shown_possible = np.where(vetoed, -1.0, probability)
    candidates = sorted({float(p) for p in shown_possible if p > 0.0})
    best = candidates[-1] if candidates else 1.0
    for t in candidates:
        shown = shown_possible >= t
        if shown.sum() == 0:
            continue
        precision = float((shown & good).sum() / shown.sum())
        if precision >= target:
            best = t
            break
    shown = shown_possible >= best
    stats = {
        "threshold": best,
        "precision": float((shown & good).sum() / max(1, shown.sum())),
        "good_shown": float((shown & good).sum() / max(1, good.sum())),
        "wrong_shown": float((shown & wrong).sum()),
        "forbidden_shown": float((shown & np.array([label == "forbidden" for label in labels])).sum()),
        "good": float(good.sum()),
        "absurd": float(sum(label == "absurd" for label in labels)),
        "forbidden": float(sum(label == "forbidden" for label in labels)),
        "non_pairs": float(sum(label == "non_pair" for label in labels)),
        "non_pairs_shown": float((shown & np.array([label == "non_pair" for label in labels])).sum()),
    }
    return best, stats


def train(data: TrainingData, seed: int = SEED, compare: bool = True) -> ranker.Model:
    """Cross-validate, calibrate on the held-out scores, fit the weights on everything."""
    cv = cross_validate(data, seed, compare)
    file_feats = [pair_features([build_profile(o) for o in f.offers], [build_profile(n) for n in f.needs])
                  for f in data.files]
    parts = [_exchange_examples(f, feats, np.ones(len(f.offers), dtype=bool))
             for f, feats in zip(data.files, file_feats, strict=True)]
    lab = data.labelled
    if lab is not None:
        lab_feats = pair_features([build_profile(o) for o in lab.offers], [build_profile(n) for n in lab.needs])
        parts.append(_labelled_examples(lab, lab_feats, np.ones(len(lab.labels), dtype=bool)))
    if data.decisions:
        parts.append(decision_examples(data.decisions))
    every = _concat(parts)
    if len(every.y) == 0 or every.y.min() == every.y.max():
        raise ValueError("training needs pairs and non-pairs")
    beta, intercept = ranker.fit_nonnegative_logistic(every.x, every.y, every.w)
    xs, ps = ranker.isotonic_points(np.array(cv.oof_score), np.array(cv.oof_label), np.array(cv.oof_weight))
    coefficients = dict(zip(ranker.FEATURES, (float(b) for b in beta), strict=True))
    draft = ranker.Model(coefficients, intercept, xs, ps, threshold=1.0)
    labelled_stats: dict[str, float] = {}
    threshold = 0.5
    if lab is not None and cv.labelled_score is not None and cv.labelled_vetoed is not None:
        probability, labels, vetoed = draft.probability(cv.labelled_score), list(lab.labels), cv.labelled_vetoed
        if cv.non_pair_score is not None and cv.non_pair_vetoed is not None:
            probability = np.concatenate([probability, draft.probability(cv.non_pair_score)])
            labels += ["non_pair"] * len(cv.non_pair_score)
            vetoed = np.concatenate([vetoed, cv.non_pair_vetoed])
        threshold, labelled_stats = choose_threshold(probability, labels, vetoed)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return ranker.Model(
        coefficients=coefficients,
        intercept=intercept,
        calibration_score=xs,
        calibration_probability=ps,
        threshold=round(threshold, 6),
        version=f"{stamp[:10]}-{data.data_hash[:8]}",
        trained_at=stamp,
        data_hash=data.data_hash,
        seed=seed,
        figures={
            "cv": _rounded(figures(cv)),
            "labelled_cv": _rounded(labelled_stats),
            "examples": {"pairs": int(every.y.sum()), "non_pairs": int((every.y == 0).sum()),
                         "decisions": len(data.decisions)},
            "folds": FOLDS,
        },
    )


def decision_examples(decisions: Sequence[tuple[Listing, Listing, int]]) -> Examples:
    """Accepted or completed matches (1) and declined ones (0) of the territory, as examples."""
    xs, ys = [], []
    for offer, need, label in decisions:
        feats = pair_features([build_profile(offer)], [build_profile(need)])
        xs.append(feats.x[0, 0])
        ys.append(float(label))
    n = len(ys)
    return Examples(np.array(xs).reshape(-1, feats.x.shape[-1]), np.array(ys), np.ones(n), ["decisions"] * n)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4) if math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def report(fig: dict[str, Any]) -> list[str]:
    """Lines of the grouped cross-validation, one per method and style."""
    lines = []
    for method, entry in fig.items():
        for part in ("all", *STYLES):
            m = entry[part]
            if not m.get("rows"):
                continue
            lines.append(
                f"{method:<28} {part:<6} rows={int(m['rows']):>4} hit@1={m['hit@1']:.3f} hit@5={m['hit@5']:.3f} "
                f"hit@10={m['hit@10']:.3f} MRR={m['MRR']:.3f}"
            )
    return lines


def train_and_write(
    target: Path, seed: int | None = None, decisions: Sequence[tuple[Listing, Listing, int]] = (),
) -> tuple[str, bool]:
    """``matchmaking train``: fit, and write the model to ``target``, unless the territory's
    decisions made the grouped-CV figures on the reference data drop (then nothing is written)."""
    from matchmaking.matching.text import seed_dir

    the_seed = SEED if seed is None else seed
    data = load_training(seed_dir())
    lines: list[str] = []
    if decisions:
        base = figures(cross_validate(data, the_seed, compare=False))[LEARNERS[0].name]["all"]
        data.decisions = list(decisions)
        model = train(data, the_seed)
        new = model.figures["cv"][LEARNERS[0].name]["all"]
        lines.append(f"decisions: {len(decisions)} pairs")
        lines.append(f"reference data without them: hit@5={base['hit@5']:.3f} MRR={base['MRR']:.3f}")
        lines.append(f"reference data with them:    hit@5={new['hit@5']:.3f} MRR={new['MRR']:.3f}")
        if new["hit@5"] < round(base["hit@5"], 4) or new["MRR"] < round(base["MRR"], 4):
            lines.append("the figures drop: the model is kept as it was")
            return "\n".join(lines), False
    else:
        model = train(data, the_seed)
    model.write(target)
    lines.extend(report(model.figures["cv"]))
    stats = model.figures.get("labelled_cv", {})
    if stats:
        lines.append(
            f"labelled pairs: threshold={model.threshold:.3f} precision={stats['precision']:.3f} "
            f"good shown={stats['good_shown']:.3f} forbidden shown={int(stats['forbidden_shown'])}"
        )
    lines.append(f"model {model.version} written to {target}")
    return "\n".join(lines), True
