"""The learned ranker: its form, its calibration, its threshold, and a model that retrains to itself."""

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest

from matchmaking.matching import ranker, training
from matchmaking.matching.text import seed_dir


def test_a_model_round_trips_through_its_file(tmp_path: Path) -> None:
    model = ranker.model()
    path = tmp_path / "model.json"
    model.write(path)
    again = ranker.read(path)
    assert again.to_dict() == model.to_dict()
    assert math.isclose(sum(again.material_weights().values()), 1.0)


@pytest.mark.parametrize("change", [
    {"coefficients": {"text": -1.0}},
    {"format": 99},
    {"calibration": {"score": [0.0, 0.5, 0.4], "probability": [0.0, 0.2, 0.3]}},
])
def test_a_malformed_model_is_refused(change: dict) -> None:
    data = ranker.model().to_dict()
    for key, value in change.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and key == "coefficients" else value
    with pytest.raises(ValueError):
        ranker.Model.from_dict(data)


def test_the_probability_rises_with_the_score_and_the_threshold_agrees() -> None:
    model = ranker.model()
    scores = np.linspace(0.0, 1.0, 201)
    p = model.probability(scores)
    assert np.all(np.diff(p) >= 0) and p[0] == 0.0
    cut = model.score_threshold()
    assert model.shows(float(model.probability(cut + 1e-6)))
    assert not model.shows(float(model.probability(max(cut - 1e-3, 0.0))))


def test_isotonic_points_rise_strictly_between_steps() -> None:
    rng = np.random.default_rng(3)
    score = rng.random(500)
    label = (rng.random(500) < score**2).astype(float)
    xs, ps = ranker.isotonic_points(score, label)
    assert xs[0] == 0.0 and xs[-1] == 1.0
    assert all(b > a for a, b in zip(xs, xs[1:], strict=False))
    assert all(b >= a for a, b in zip(ps, ps[1:], strict=False))


def test_the_fit_keeps_weights_non_negative_and_finds_the_evidence_that_matters() -> None:
    rng = np.random.default_rng(7)
    x = rng.random((2000, 5))
    # Only the first and fourth features carry the signal; the third would take a negative weight.
    z = 6 * x[:, 0] + 3 * x[:, 3] - 2 * x[:, 2] - 4
    y = (rng.random(2000) < 1 / (1 + np.exp(-z))).astype(float)
    beta, _b = ranker.fit_nonnegative_logistic(x, y, np.ones(2000))
    assert np.all(beta >= 0)
    assert beta[0] > beta[3] > 1.0 > beta[1]
    assert beta[2] == pytest.approx(0.0, abs=1e-6)


def test_the_threshold_is_the_lowest_with_nine_right_in_ten() -> None:
    labels = ["good"] * 9 + ["absurd"] + ["good"] + ["absurd"] * 3 + ["forbidden"]
    p = np.array([0.9] * 9 + [0.8, 0.5, 0.4, 0.3, 0.2, 0.95])
    vetoed = np.array([False] * 14 + [True])
    threshold, stats = training.choose_threshold(p, labels, vetoed)
    # From 0.4: 10 right in 12; from 0.5: 10 in 11, the lowest that reaches 9 in 10.
    assert threshold == 0.5
    assert stats["precision"] == pytest.approx(10 / 11) and stats["good_shown"] == 1.0
    assert stats["forbidden_shown"] == 0  # vetoed, though its probability was the highest


def test_cross_validation_never_tests_a_group_it_trained_on() -> None:
    groups = [f"g{i % 13}" for i in range(200)]
    fold = training.fold_of_groups(groups, folds=5)
    assert set(fold.values()) == set(range(5))
    # A group is in exactly one fold, so no fold's training set holds a row of its test groups.
    for k in range(5):
        test = {g for g in groups if fold[g] == k}
        train = {g for g in groups if fold[g] != k}
        assert test and not test & train


@pytest.fixture(scope="module")
def retrained() -> ranker.Model:
    return training.train(training.load_training(seed_dir()))


def test_training_reproduces_the_shipped_model(retrained: ranker.Model) -> None:
    shipped = ranker.model()
    assert shipped.version != "untrained", "seed/model.json is missing: run `matchmaking train`"
    assert retrained.data_hash == shipped.data_hash, "the training data changed: run `matchmaking train`"
    for name in ranker.FEATURES:
        assert retrained.coefficients[name] == pytest.approx(shipped.coefficients[name], rel=1e-3, abs=1e-4)
    assert retrained.threshold == pytest.approx(shipped.threshold, abs=0.01)
    for method, entry in shipped.figures["cv"].items():
        for part in ("heavy", "sme"):
            if entry[part].get("rows"):
                for metric in ("hit@5", "MRR"):
                    assert retrained.figures["cv"][method][part][metric] == pytest.approx(
                        entry[part][metric], abs=0.01), (method, part, metric)


def test_the_shipped_model_beats_tfidf_in_grouped_cross_validation() -> None:
    # The heavy-industry rows come from public documents the knowledge was not written from: there
    # the engine is only level with TF-IDF on hit@5 (the aim, +0.20, is not reached) and ahead on MRR.
    cv = ranker.model().figures["cv"]
    engine, tfidf = cv[training.LEARNERS[0].name], cv["TF-IDF"]
    assert engine["heavy"]["rows"] >= 60
    assert engine["heavy"]["hit@5"] >= tfidf["heavy"]["hit@5"]
    assert engine["heavy"]["MRR"] > tfidf["heavy"]["MRR"]
    assert engine["sme"]["hit@5"] >= tfidf["sme"]["hit@5"] + 0.10


def test_the_shipped_threshold_is_right_nine_times_in_ten_on_the_labelled_pairs() -> None:
    stats = ranker.model().figures["labelled_cv"]
    assert stats["precision"] >= training.PRECISION_TARGET
    assert stats["good"] >= 100 and stats["forbidden"] >= (stats["good"] + stats["forbidden"]) / 3


def test_decisions_that_lower_the_reference_figures_are_not_kept(tmp_path: Path) -> None:
    data = training.load_training(seed_dir())
    rng = random.Random(1)
    # Real exchanges declined as "wrong material", and unrelated pairs accepted: they can only hurt.
    rows = []
    for f in data.files:
        for i in range(len(f.offers)):
            rows.append((f.offers[i], f.needs[f.truth[i]], 0))
            rows.extend((f.offers[i], f.needs[rng.randrange(len(f.needs))], 1) for _ in range(3))
    target = tmp_path / "model.json"
    message, written = training.train_and_write(target, decisions=rows)
    assert not written and not target.exists()
    assert "kept as it was" in message


def test_the_model_file_names_its_data_and_figures() -> None:
    data = json.loads((seed_dir() / ranker.MODEL_FILE).read_text(encoding="utf-8"))
    assert data["format"] == ranker.FORMAT and data["data_hash"] and data["trained_at"]
    assert data["features"] == list(ranker.FEATURES)
    assert "TF-IDF" in data["figures"]["cv"]


def test_reviewed_non_pairs_judged_plausible_are_no_negatives() -> None:
    rows = [
        {"id": "A", "label": "good", "offer_title": "Cartons d'emballage", "need_title": "Cartons de réemploi"},
        {"id": "B", "label": "good", "offer_title": "Pain invendu", "need_title": "Pain sec pour porcs"},
        {"id": "C", "label": "good", "offer_title": "Fumier", "need_title": "Déchets à composter"},
    ]
    reviewed = [
        {"offer_id": "A", "need_id": "C", "verdict": "plausible"},  # cardboard does go to compost
        {"offer_id": "A", "need_id": "B", "verdict": "wrong"},
        {"offer_id": "B", "need_id": "A", "verdict": "unreviewed"},
        {"offer_id": "B", "need_id": "Z", "verdict": "wrong"},  # a row that no longer exists
    ]
    lab = training.labelled_pairs(rows, reviewed)
    assert lab.non_pairs == [(0, 1)]
    drawn = training.draw_non_pairs(lab)
    assert drawn and all(i != j and lab.labels[i] == "good" for i, j in drawn)
