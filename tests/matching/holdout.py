"""Held-out check of the engine's few tuned constants, by source.

The development set mixes two styles: heavy-industry case studies in English (``MAESTRI-*`` rows)
and French and European SME exchanges (``FR-*`` and ``CUR-*`` rows). Each style is one fold: the
constants are chosen on one fold (best MRR, then hit@5) and reported on the other, both ways.
Every row is still ranked against every need of the file, as in ``matchmaking evaluate``.

    .venv/bin/python -m tests.matching.holdout /work/shared/data/synergies_dev.csv

Not a test (the file name does not start with ``test_``): it takes a minute or two.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from matchmaking.matching import evaluate, scoring

FOLDS = {"A (MAESTRI)": ("MAESTRI",), "B (FR+CUR)": ("FR", "CUR")}

# The constants tuned by hand while the knowledge was written; each grid keeps the relevance
# weights summing to 1 (text + material + code + route).
GRID: dict[str, Sequence[Any]] = {
    "WEIGHTS": [
        {"text": 0.30, "material": 0.25, "code": 0.05, "route": 0.40},
        {"text": 0.25, "material": 0.25, "code": 0.05, "route": 0.45},
        {"text": 0.25, "material": 0.20, "code": 0.05, "route": 0.50},
        {"text": 0.20, "material": 0.20, "code": 0.05, "route": 0.55},
        {"text": 0.30, "material": 0.20, "code": 0.05, "route": 0.45},
        {"text": 0.35, "material": 0.20, "code": 0.05, "route": 0.40},
    ],
    "ROUTE_SECTOR_SHARE": [0.2, 0.3, 0.4],
    # (LEVEL_SIBLING, LEVEL_FAMILY)
    "LEVELS": [(0.5, 0.45), (0.25, 0.2), (0.1, 0.05), (0.0, 0.0)],
}


@contextmanager
def constants(values: dict[str, Any]) -> Iterator[None]:
    saved = {name: getattr(scoring, name) for name in values if name not in ("WEIGHTS", "LEVELS")}
    saved_levels = (scoring.LEVEL_SIBLING, scoring.LEVEL_FAMILY)
    saved_weights = dict(scoring.WEIGHTS)
    try:
        for name, value in values.items():
            if name == "WEIGHTS":
                scoring.WEIGHTS.update(value)
            elif name == "LEVELS":
                scoring.LEVEL_SIBLING, scoring.LEVEL_FAMILY = value
            else:
                setattr(scoring, name, value)
        scoring._content.cache_clear()
        yield
    finally:
        for name, value in saved.items():
            setattr(scoring, name, value)
        scoring.LEVEL_SIBLING, scoring.LEVEL_FAMILY = saved_levels
        scoring.WEIGHTS.clear()
        scoring.WEIGHTS.update(saved_weights)
        scoring._content.cache_clear()


def fold_metrics(rows: Sequence[dict[str, str]], ranks: Sequence[float]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, prefixes in FOLDS.items():
        r = np.array([rk for row, rk in zip(rows, ranks, strict=True) if evaluate.source_group(row["id"]) in prefixes])
        out[name] = {"hit@5": float(np.mean(r <= 5)), "MRR": float(np.mean(1.0 / r)), "n": float(len(r))}
    r = np.array(ranks)
    out["all"] = {"hit@5": float(np.mean(r <= 5)), "MRR": float(np.mean(1.0 / r)), "n": float(len(r))}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file")
    args = parser.parse_args(argv)
    rows = evaluate.load_rows(args.file)
    names = list(GRID)
    results: list[tuple[dict[str, Any], dict[str, dict[str, float]]]] = []
    for combo in itertools.product(*(GRID[n] for n in names)):
        values = dict(zip(names, combo, strict=True))
        with constants(values):
            ranks = evaluate.evaluate_rows(rows)["ranks"]
        results.append((values, fold_metrics(rows, ranks)))
    current = fold_metrics(rows, evaluate.evaluate_rows(rows)["ranks"])
    print(f"shipped constants: {_line(current)}")
    for tune, check in (("A (MAESTRI)", "B (FR+CUR)"), ("B (FR+CUR)", "A (MAESTRI)")):
        best_values, best = max(results, key=lambda vr: (vr[1][tune]["MRR"], vr[1][tune]["hit@5"]))
        print(f"tuned on {tune}: {best_values}")
        print(f"  in-sample {tune}: hit@5={best[tune]['hit@5']:.3f} MRR={best[tune]['MRR']:.3f}")
        print(f"  held-out  {check}: hit@5={best[check]['hit@5']:.3f} MRR={best[check]['MRR']:.3f}")
    return 0


def _line(m: dict[str, dict[str, float]]) -> str:
    return " | ".join(f"{k}: hit@5={v['hit@5']:.3f} MRR={v['MRR']:.3f}" for k, v in m.items())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
