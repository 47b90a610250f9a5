"""Read locust's CSV statistics and say whether the targets hold.

    python tests/load/summary.py OUT/locust     (reads OUT/locust_stats.csv and OUT/locust_failures.csv)

Targets: no 5xx at all; p95 ≤ 300 ms for every page, ≤ 150 ms for every search (page or API).
Signing in is reported without a target: its password hash is slow on purpose.
Prints one line per kind of request (count, throughput, p50/p95/p99, failures) and exits 1 when a
target is missed. Also writes OUT/summary.json.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from pathlib import Path

PAGE_P95_MS = 300
SEARCH_P95_MS = 150


def target_ms(name: str) -> int | None:
    if "sign-in" in name:
        return None  # password hashing (argon2) is slow on purpose; done once per session
    if "search" in name:
        return SEARCH_P95_MS
    if name.startswith("page "):
        return PAGE_P95_MS
    return None


def _num(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return float("nan")


def summarise(prefix: str) -> tuple[str, bool, dict[str, object]]:
    stats = list(csv.DictReader(io.StringIO(Path(f"{prefix}_stats.csv").read_text())))
    failures_path = Path(f"{prefix}_failures.csv")
    failures = list(csv.DictReader(io.StringIO(failures_path.read_text()))) if failures_path.exists() else []
    server_errors = sum(int(f["Occurrences"]) for f in failures if re.search(r"\b5\d\d\b", f["Error"]))
    lines = [f"{'request':38} {'count':>7} {'req/s':>6} {'p50':>6} {'p95':>6} {'p99':>6} {'fail':>5}  target p95"]
    ok = server_errors == 0
    rows = []
    for row in stats:
        name = row["Name"] if row["Type"] in ("", "None") else f"{row['Name']}"
        if row["Name"] == "Aggregated":
            name = "all requests"
        p50, p95, p99 = _num(row["50%"]), _num(row["95%"]), _num(row["99%"])
        target = target_ms(row["Name"])
        verdict = ""
        if target is not None:
            met = p95 <= target
            ok = ok and met
            verdict = f"{'≤' if met else '>'} {target} ms {'ok' if met else 'MISSED'}"
        lines.append(f"{name[:38]:38} {int(row['Request Count']):7d} {_num(row['Requests/s']):6.1f} {p50:6.0f} "
                     f"{p95:6.0f} {p99:6.0f} {int(row['Failure Count']):5d}  {verdict}")
        rows.append({"name": name, "count": int(row["Request Count"]), "rps": _num(row["Requests/s"]),
                     "p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "failures": int(row["Failure Count"]),
                     "target_p95_ms": target})
    lines.append(f"5xx answers: {server_errors}")
    for failure in failures:
        lines.append(f"  failure: {failure['Method']} {failure['Name']}: {failure['Error'][:120]} "
                     f"× {failure['Occurrences']}")
    lines.append("targets: " + ("all met" if ok else "MISSED"))
    return "\n".join(lines), ok, {"requests": rows, "server_errors": server_errors, "targets_met": ok}


def main(argv: list[str]) -> int:
    prefix = argv[1]
    text, ok, data = summarise(prefix)
    print(text)
    Path(prefix).with_name("summary.json").write_text(json.dumps(data, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
