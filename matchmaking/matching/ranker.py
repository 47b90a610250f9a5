"""The learned part of the score: how much each piece of evidence weighs, how a score becomes the
chance that the pair is a real exchange, and the one threshold that decides what is shown.

``matchmaking train`` fits them on the repository's labelled exchanges (``seed/training/``) and
writes ``seed/model.json``; the engine reads that file once per seed directory. The weights are
the coefficients of a logistic regression held non-negative, so that evidence only ever raises a
pair and the engine can keep bounding a pair's score by its material relevance; the probability is
an isotonic calibration fitted on held-out folds, a monotone map of the score, so ranking by score
and ranking by probability agree.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

FORMAT = 1
MODEL_FILE = "model.json"
# The evidence the model weighs, each a component of the pair in [0, 1]: the text cosine (words
# and concepts), material proximity, List-of-Waste code proximity, a known valorisation route, and
# that route again scaled by how usual the flow is between the two firms' sectors.
FEATURES = ("text", "material", "code", "route", "route_sector")

# Before any training (a seed directory without a model): the weights the engine had by hand, the
# score read as its own probability, and the old weak-lead line as the threshold.
_FALLBACK = {
    "coefficients": {"text": 0.30, "material": 0.25, "code": 0.05, "route": 0.24, "route_sector": 0.16},
    "intercept": 0.0,
    "calibration": {"score": [0.0, 1.0], "probability": [0.0, 1.0]},
    "threshold": 0.15,
}


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one per file read
class Model:
    coefficients: Mapping[str, float]
    intercept: float
    calibration_score: tuple[float, ...]
    calibration_probability: tuple[float, ...]
    threshold: float  # the calibrated probability from which a pair is shown
    version: str = "untrained"
    trained_at: str = ""
    data_hash: str = ""
    seed: int = 0
    figures: Mapping[str, Any] = field(default_factory=dict)

    # -- what the engine uses ----------------------------------------------------------------
    def material_weights(self) -> dict[str, float]:
        """Weights of the four material components, summing to 1 (a pair's relevance stays in
        [0, 1]); the route's is the sum of its two coefficients."""
        c = self.coefficients
        raw = {
            "text": c["text"],
            "material": c["material"],
            "code": c["code"],
            "route": c["route"] + c["route_sector"],
        }
        total = sum(raw.values())
        if total <= 0.0:
            raise ValueError("a model needs at least one positive coefficient")
        return {k: v / total for k, v in raw.items()}

    def route_sector_share(self) -> float:
        """Share of the route component that depends on the two sectors' usual flows."""
        c = self.coefficients
        total = c["route"] + c["route_sector"]
        return c["route_sector"] / total if total > 0 else 0.0

    def probability(self, score: NDArray[np.float64] | float) -> NDArray[np.float64]:
        """The calibrated chance that pairs of these scores are real exchanges."""
        result: NDArray[np.float64] = np.interp(
            np.asarray(score, dtype=np.float64), self.calibration_score, self.calibration_probability
        )
        return result

    def shows(self, probability: float) -> bool:
        """Whether a pair of this calibrated probability is shown and notified (the one threshold)."""
        return probability >= self.threshold

    def score_threshold(self) -> float:
        """The lowest score whose probability reaches the threshold (what the engine can prune at)."""
        xs, ps = self.calibration_score, self.calibration_probability
        for i, p in enumerate(ps):
            if p >= self.threshold:
                if i == 0 or ps[i - 1] == p:
                    return xs[i]
                # Linear between the two calibration points, as ``probability`` interpolates.
                x0, x1, p0 = xs[i - 1], xs[i], ps[i - 1]
                return x0 + (x1 - x0) * (self.threshold - p0) / (p - p0)
        return math.inf

    # -- data --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": self.version,
            "trained_at": self.trained_at,
            "data_hash": self.data_hash,
            "seed": self.seed,
            "features": list(FEATURES),
            "coefficients": {k: self.coefficients[k] for k in FEATURES},
            "intercept": self.intercept,
            "calibration": {
                "score": list(self.calibration_score),
                "probability": list(self.calibration_probability),
            },
            "threshold": self.threshold,
            "figures": dict(self.figures),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Model:
        if data.get("format", FORMAT) != FORMAT:
            raise ValueError(f"model format {data.get('format')!r}, this engine reads {FORMAT}")
        coefficients = {k: float(data["coefficients"][k]) for k in FEATURES}
        if any(v < 0 or not math.isfinite(v) for v in coefficients.values()):
            raise ValueError("model coefficients must be finite and non-negative")
        xs = tuple(float(x) for x in data["calibration"]["score"])
        ps = tuple(float(p) for p in data["calibration"]["probability"])
        if len(xs) != len(ps) or len(xs) < 2 or any(b < a for a, b in zip(xs, xs[1:], strict=False)):
            raise ValueError("model calibration must be two increasing lists of the same length")
        return cls(
            coefficients=coefficients,
            intercept=float(data.get("intercept", 0.0)),
            calibration_score=xs,
            calibration_probability=ps,
            threshold=float(data["threshold"]),
            version=str(data.get("version", "untrained")),
            trained_at=str(data.get("trained_at", "")),
            data_hash=str(data.get("data_hash", "")),
            seed=int(data.get("seed", 0)),
            figures=dict(data.get("figures", {})),
        )

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=False) + "\n", encoding="utf-8")


def read(path: Path) -> Model:
    return Model.from_dict(json.loads(path.read_text(encoding="utf-8")))


FALLBACK = Model.from_dict(_FALLBACK)


@functools.lru_cache(maxsize=8)
def model_in(directory: Path) -> Model:
    """The model shipped in a seed directory, or the hand-set fallback when it has none."""
    path = directory / MODEL_FILE
    return read(path) if path.exists() else FALLBACK


def model() -> Model:
    """The model of the current seed directory (``text.seed_dir``)."""
    from matchmaking.matching.text import seed_dir

    return model_in(seed_dir())


# ---------------------------------------------------------------------------------------------
# Fitting (used by ``training``; kept here so that the model's form lives in one place)
# ---------------------------------------------------------------------------------------------


def fit_nonnegative_logistic(
    x: NDArray[np.float64], y: NDArray[np.float64], weight: NDArray[np.float64], l2: float = 1e-3
) -> tuple[NDArray[np.float64], float]:
    """Logistic regression with coefficients held ≥ 0 (L-BFGS-B), an L2 penalty and sample
    weights; returns (coefficients, intercept). scikit-learn's estimator has no sign constraint."""
    from scipy.optimize import minimize

    n_features = x.shape[1]
    total = float(weight.sum())

    def loss(theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        beta, b = theta[:n_features], theta[n_features]
        z = x @ beta + b
        # log(1 + e^z) - y z, stably.
        value = float(np.sum(weight * (np.logaddexp(0.0, z) - y * z)) / total + l2 * beta @ beta)
        p = 0.5 * (1.0 + np.tanh(0.5 * z))
        r = weight * (p - y) / total
        grad = np.concatenate([x.T @ r + 2 * l2 * beta, [r.sum()]])
        return value, grad

    start = np.zeros(n_features + 1)
    bounds: Sequence[tuple[float | None, float | None]] = [(0.0, None)] * n_features + [(None, None)]
    found = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 2000})
    theta = found.x
    return np.asarray(theta[:n_features], dtype=np.float64), float(theta[n_features])


def isotonic_points(
    score: NDArray[np.float64], label: NDArray[np.float64], weight: NDArray[np.float64] | None = None
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """An isotonic calibration as breakpoints for ``probability``: each step of the isotonic fit
    at its middle, so that between steps the probability rises with the score (two pairs of
    different scores never read as equals, and ranking by one is ranking by the other)."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    iso.fit(score, label, sample_weight=weight)
    steps: dict[float, list[float]] = {}
    for x, p in zip(iso.X_thresholds_, iso.y_thresholds_, strict=True):
        steps.setdefault(float(p), []).append(float(x))
    levels = sorted(steps)
    xs = [0.0] + [(min(steps[p]) + max(steps[p])) / 2.0 for p in levels] + [1.0]
    ps = [0.0] + levels + [levels[-1]]
    # The first and last steps reach the ends: no pair scores below the lowest seen as 0 if it was not.
    xs[1] = max(xs[1], 1e-9)
    xs[-2] = min(xs[-2], 1.0 - 1e-9)
    return tuple(xs), tuple(ps)
