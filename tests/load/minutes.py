"""Per-minute figures of a load run beside the machine's load average, and the targets checked on
the minutes when the machine was not busy with anything else (it may be shared).

    python tests/load/minutes.py OUT     (reads OUT/requests.csv and OUT/loadavg.txt)
"""

from __future__ import annotations

import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from summary import target_ms

QUIET_LOAD = 3.0  # 1-minute load average at most: the service under test alone keeps about 2 runnable


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main(argv: list[str]) -> int:
    out = Path(argv[1])
    samples = [line.split(",") for line in (out / "requests.csv").read_text().splitlines() if line]
    # From the end of the ramp-up (when the CPU count starts), as locust's own statistics.
    ramp = out / "cpu-start.json"
    if ramp.exists():
        samples = [s for s in samples if float(s[0]) >= ramp.stat().st_mtime]
    loads = {}
    for line in (out / "loadavg.txt").read_text().splitlines():
        clock, one, *_ = line.split()
        loads[clock[:5]] = max(loads.get(clock[:5], 0.0), float(one))
    by_minute: dict[str, list[tuple[str, float, int]]] = defaultdict(list)
    for start, name, ms, status in samples:
        minute = datetime.fromtimestamp(float(start)).strftime("%H:%M")
        by_minute[minute].append((name, float(ms), int(status)))
    print(f"{'minute':6} {'load':>5} {'req':>5} {'p50':>6} {'p95':>6} {'p99':>6}  5xx")
    quiet: dict[str, list[float]] = defaultdict(list)
    for minute in sorted(by_minute):
        rows = by_minute[minute]
        times = [ms for _, ms, _ in rows]
        load = loads.get(minute)
        errors = sum(1 for *_, status in rows if status >= 500)
        print(f"{minute:6} {load if load is not None else float('nan'):5.2f} {len(rows):5d} {pct(times, .5):6.0f} "
              f"{pct(times, .95):6.0f} {pct(times, .99):6.0f}  {errors}")
        if load is not None and load <= QUIET_LOAD:
            for name, ms, _ in rows:
                quiet[name].append(ms)
    if not quiet:
        print(f"no minute with a load average ≤ {QUIET_LOAD}: the machine was busy throughout")
        return 0
    minutes = sum(1 for m in by_minute if loads.get(m, 99) <= QUIET_LOAD)
    print(f"\nminutes with a load average ≤ {QUIET_LOAD} ({minutes}):")
    print(f"{'request':38} {'count':>6} {'p50':>6} {'p95':>6} {'p99':>6}  target p95")
    for name in sorted(quiet):
        times, target = quiet[name], target_ms(name)
        verdict = "" if target is None else f"{'≤' if pct(times, .95) <= target else '>'} {target} ms"
        print(f"{name[:38]:38} {len(times):6d} {pct(times, .5):6.0f} {pct(times, .95):6.0f} {pct(times, .99):6.0f}  "
              f"{verdict}")
    everything = [ms for values in quiet.values() for ms in values]
    print(f"{'all requests':38} {len(everything):6d} {pct(everything, .5):6.0f} {pct(everything, .95):6.0f} "
          f"{pct(everything, .99):6.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
