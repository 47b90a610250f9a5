"""The quality protocol: rank needs for offers taken from real, implemented exchanges.

Input: a CSV with ``waste_description, ewc_code, source_industry, input_description,
receiving_industry`` (other columns are ignored). Every row's waste is an offer, known by its
description, its List-of-Waste code(s) (possibly empty, several joined by ``|``) and its firm's
activity; the needs are the distinct ``(input_description, receiving_industry)`` pairs. For each
offer all needs are ranked with the engine's score and the row's own need is the right answer;
ties count at their middle rank; there are no coordinates, so distance plays no part.

With ``--by-source`` the figures are also given per source, read from the row id prefix
(``MAESTRI-…``, ``FR-…``); ids never reach the engine, they only group the reported ranks.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from matchmaking.matching.records import NEED, OFFER, Listing
from matchmaking.matching.scoring import Profile, build_profile, final_score
from matchmaking.matching.vectors import FeatureSpace, SideMatrices, pair_block

REQUIRED = ("waste_description", "ewc_code", "source_industry", "input_description", "receiving_industry")


def _cell(row: dict[str, str], key: str) -> str:
    return (row.get(key) or "").strip()


def load_rows(path: str | Path) -> list[dict[str, str]]:
    with Path(path).open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if rows:
        missing = [c for c in REQUIRED if c not in rows[0]]
        if missing:
            raise ValueError(f"missing columns: {', '.join(missing)}")
    return rows


def build_listings(rows: Sequence[dict[str, str]]) -> tuple[list[Listing], list[Listing], list[int]]:
    """Offers (one per row), distinct needs, and for each offer the index of its own need."""
    offers: list[Listing] = []
    needs: list[Listing] = []
    need_index: dict[tuple[str, str], int] = {}
    truth: list[int] = []
    for i, row in enumerate(rows):
        codes = [c.strip() for c in _cell(row, "ewc_code").split("|") if c.strip()]
        offers.append(
            Listing(
                id=i,
                kind=OFFER,
                title=_cell(row, "waste_description"),
                low_code=codes[0] if codes else None,
                extra_low_codes=tuple(codes[1:]),
                sector_label=_cell(row, "source_industry"),
            )
        )
        key = (_cell(row, "input_description"), _cell(row, "receiving_industry"))
        if key not in need_index:
            need_index[key] = len(needs)
            needs.append(
                Listing(
                    id=len(needs),
                    kind=NEED,
                    title=key[0],
                    sector_label=key[1],
                    accepts_hazardous=True,  # the source says the exchange happened
                )
            )
        truth.append(need_index[key])
    return offers, needs, truth


def score_matrix(offers: Sequence[Profile], needs: Sequence[Profile]) -> np.ndarray:
    """Engine scores of every offer (rows) against every need (columns)."""
    space = FeatureSpace()
    o = SideMatrices.build(list(offers), space, kind=OFFER)
    n = SideMatrices.build(list(needs), space, kind=NEED)
    rows, cols, raw, ctx = pair_block(o, np.arange(len(offers)), n, np.arange(len(needs)), dense=True)
    from matchmaking.matching.scoring import context_components, context_fit, material_relevance

    cres = context_components(ctx)
    score = final_score(material_relevance(raw), context_fit(cres.raw), cres.allowed)
    out = np.zeros((len(offers), len(needs)))
    out[rows, cols] = score
    return out


def rank_metrics(scores: np.ndarray, truth: Sequence[int]) -> dict[str, float]:
    """hit@1/5/10 and MRR with ties counted at their middle rank."""
    ranks = []
    for i, t in enumerate(truth):
        row = scores[i]
        better = int(np.sum(row > row[t]))
        tied = int(np.sum(row == row[t]))  # includes the right answer
        ranks.append(better + (tied + 1) / 2.0)
    r = np.array(ranks)
    return {
        "offers": float(len(truth)),
        "needs": float(scores.shape[1]),
        "hit@1": float(np.mean(r <= 1)),
        "hit@5": float(np.mean(r <= 5)),
        "hit@10": float(np.mean(r <= 10)),
        "MRR": float(np.mean(1.0 / r)),
        "mean_rank": float(np.mean(r)),
    }


def source_group(row_id: str) -> str:
    """The source of a row, read from its id prefix ("MAESTRI-1-12-4" → "MAESTRI")."""
    head = row_id.strip().split("-", 1)[0]
    return head or "?"


def evaluate_rows(rows: Sequence[dict[str, str]]) -> dict[str, Any]:
    """The engine (the shipped model) and plain TF-IDF on the same rows, overall and per style."""
    from matchmaking.matching import ranker, training

    offers, needs, truth = build_listings(rows)
    scores = score_matrix([build_profile(x) for x in offers], [build_profile(x) for x in needs])
    result: dict[str, Any] = dict(rank_metrics(scores, truth))
    result["ranks"] = _ranks(scores, truth)
    result["model"] = ranker.model().version
    f = training.exchange_file("file", rows)
    tfidf = training.ranks_of(training.tfidf_scores(f), truth)
    engine = np.array(result["ranks"])
    styles = np.array(f.styles)
    result["styles"] = {
        style: {"engine": training.metrics_of(engine[styles == style]),
                "TF-IDF": training.metrics_of(tfidf[styles == style])}
        for style in training.STYLES if (styles == style).any()
    }
    result["tfidf"] = training.metrics_of(tfidf)
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(source_group(row.get("id", "")), []).append(i)
    if len(groups) > 1:
        result["by_source"] = {
            name: rank_metrics(scores[idx], [truth[i] for i in idx]) for name, idx in sorted(groups.items())
        }
    return result


def _ranks(scores: np.ndarray, truth: Sequence[int]) -> list[float]:
    out = []
    for i, t in enumerate(truth):
        row = scores[i]
        out.append(float(np.sum(row > row[t]) + (np.sum(row == row[t]) + 1) / 2.0))
    return out


def evaluate_file(path: str | Path) -> dict[str, Any]:
    """The metrics of the protocol on a CSV file (see the module docstring)."""
    result = evaluate_rows(load_rows(path))
    result["file"] = str(path)
    return result


def summary_line(metrics: dict[str, Any]) -> str:
    return (
        f"hit@1={metrics['hit@1']:.3f} hit@5={metrics['hit@5']:.3f} "
        f"hit@10={metrics['hit@10']:.3f} MRR={metrics['MRR']:.3f}"
    )


def cross_validate_file(path: str | Path | None) -> dict[str, Any]:
    """Grouped cross-validation on the repository's training data, with the rows of ``path`` added
    (the same exchanges in the repository's files are left out of those, never counted twice);
    figures for the file's rows when one is given, else for all."""
    from matchmaking.matching import training
    from matchmaking.matching.text import seed_dir

    rows = load_rows(path) if path is not None else []
    data = training.load_training(seed_dir(), leave_out=frozenset(training.pair_key(r) for r in rows))
    if rows:
        data.files.append(training.exchange_file("file", rows))
    cv = training.cross_validate(data)
    fig = training.figures(cv)
    if rows:
        # Only the file's rows: rebuild the per-style view from its ranks.
        index = len(cv.files) - 1
        styles = np.array(cv.files[index].styles)
        fig = {
            method: {"all": training.metrics_of(per_file[index]),
                     **{style: training.metrics_of(per_file[index][styles == style]) for style in training.STYLES}}
            for method, per_file in cv.ranks.items()
        }
    return {"file": str(path) if path else "seed/training", "folds": training.FOLDS, "cv": fig}


def run_evaluate(path: str | None, as_json: bool, by_source: bool = False, cv: bool = False) -> str:
    """Text for ``matchmaking evaluate [FILE.csv] [--cv] [--json] [--by-source]``; the last line is
    the engine's summary.

    Without ``--cv``: the shipped model and TF-IDF on the file. With it: grouped cross-validation
    (no source document both trained and tested on), every method beside TF-IDF, per style.
    """
    from matchmaking.matching import training

    if cv:
        result = cross_validate_file(path)
        if as_json:
            return json.dumps(result, indent=2, sort_keys=True)
        lines = [f"grouped cross-validation, {result['folds']} folds, rows of {result['file']}"]
        lines.extend(training.report(result["cv"]))
        shipped = result["cv"][training.LEARNERS[0].name]["all"]
        lines.append(summary_line(shipped))
        return "\n".join(lines)
    if path is None:
        raise ValueError("a file is needed without --cv")
    metrics = evaluate_file(path)
    public = {k: v for k, v in metrics.items() if k != "ranks" and (by_source or k != "by_source")}
    if as_json:
        return json.dumps(public, indent=2, sort_keys=True) + "\n" + summary_line(metrics)
    lines = [
        f"file={metrics['file']}",
        f"model={metrics['model']}",
        f"offers={int(metrics['offers'])}",
        f"needs={int(metrics['needs'])}",
        f"mean_rank={metrics['mean_rank']:.2f}",
        f"TF-IDF {summary_line(metrics['tfidf'])}",
    ]
    for style, sub in metrics["styles"].items():
        lines.append(f"style={style} rows={int(sub['engine']['rows'])} engine {summary_line(sub['engine'])} "
                     f"· TF-IDF {summary_line(sub['TF-IDF'])}")
    if by_source:
        for name, sub in metrics.get("by_source", {}).items():
            lines.append(f"source={name} offers={int(sub['offers'])} {summary_line(sub)}")
    lines.append(summary_line(metrics))
    return "\n".join(lines)


SCORED_COLUMNS = ("probability", "shown", "rank", "reasons")


def score_file(path: str | Path) -> str:
    """``matchmaking score``: each row's pair scored in the context of every offer and need of the
    file (its rank among the needs of its offer), as CSV: the input columns, then the calibrated
    probability, whether it is shown (the model's threshold), that rank and the reasons in French
    (or the veto)."""
    import io

    from matchmaking.matching import ranker
    from matchmaking.matching.scoring import explain

    rows = load_rows(path)
    offers, needs, truth = build_listings(rows)
    o_profiles = [build_profile(x) for x in offers]
    n_profiles = [build_profile(x) for x in needs]
    scores = score_matrix(o_profiles, n_profiles)
    ranks = _ranks(scores, truth)
    model = ranker.model()
    out = io.StringIO()
    columns = list(REQUIRED) + list(SCORED_COLUMNS)
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for i, row in enumerate(rows):
        expl = explain(o_profiles[i], n_profiles[truth[i]])
        values = {c: _cell(row, c) for c in REQUIRED}
        values["probability"] = f"{expl.probability:.4f}"
        values["shown"] = "true" if not expl.gates and model.shows(expl.probability) else "false"
        values["rank"] = f"{ranks[i]:g}"
        values["reasons"] = expl.phrase("fr")
        writer.writerow(values)
    return out.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="matchmaking evaluate", description=__doc__)
    parser.add_argument("file", nargs="?")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--cv", action="store_true", help="grouped cross-validation beside TF-IDF")
    parser.add_argument("--by-source", action="store_true", help="also report each source (id prefix) apart")
    args = parser.parse_args(argv)
    print(run_evaluate(args.file, args.json, args.by_source, args.cv))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
