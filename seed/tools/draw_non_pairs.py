"""Draw non-pairs of the labelled file for a person to review.

For every good pair of ``seed/training/labelled_pairs.csv`` whose offer has no reviewed non-pair yet
in ``seed/training/non_pairs.csv``, draws needs of other rows (``training.draw_non_pairs``) and
appends them with the verdict ``unreviewed``. Training reads only ``wrong`` rows: change each new
row to ``wrong`` (nobody would take this offer for this need) or ``plausible`` (a real outlet).

Usage: ``python seed/tools/draw_non_pairs.py``.
"""

from __future__ import annotations

import csv
from pathlib import Path

from matchmaking.matching import training

TRAINING = Path(__file__).resolve().parents[1] / "training"
FIELDS = ["offer_id", "need_id", "verdict", "offer_title", "need_title"]


def main() -> int:
    lab = training.labelled_pairs(training.read_csv(TRAINING / "labelled_pairs.csv"))
    path = TRAINING / "non_pairs.csv"
    rows = training.read_csv(path) if path.exists() else []
    covered = {r["offer_id"] for r in rows}
    new = [
        {"offer_id": lab.ids[i], "need_id": lab.ids[j], "verdict": "unreviewed",
         "offer_title": lab.offers[i].title, "need_title": lab.needs[j].title}
        for i, j in training.draw_non_pairs(lab)
        if lab.ids[i] not in covered
    ]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows([*rows, *new])
    print(f"{len(new)} non-pairs to review appended to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
