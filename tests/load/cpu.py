"""CPU seconds used so far by the service under test: gunicorn's workers, the Celery worker's
processes and the PostgreSQL backends of the load database. Two snapshots give what the run cost,
whatever else the machine was doing.

    python tests/load/cpu.py snapshot GUNICORN_PID CELERY_PID DATABASE > FILE
    python tests/load/cpu.py compare START END REQUESTS
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(p) for p in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return out


def _tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += _children(current)
    return found


def _postgres_backends(database: str) -> list[int]:
    rows = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-Atc",
                           "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                           "AND pid <> pg_backend_pid()"], capture_output=True, text=True, check=False)
    return [int(p) for p in rows.stdout.split()]


def snapshot(gunicorn: int, celery: int, database: str) -> dict[str, dict[str, float]]:
    groups = {"web": [p for p in _tree(gunicorn) if p != gunicorn], "worker": _tree(celery),
              "postgres": _postgres_backends(database)}
    return {name: {str(pid): _cpu(pid) for pid in pids} for name, pids in groups.items()}


def compare(start: dict[str, dict[str, float]], end: dict[str, dict[str, float]], requests: int) -> str:
    lines, total = [], 0.0
    for name in end:
        used = sum(end[name].get(pid, 0.0) - start.get(name, {}).get(pid, 0.0) for pid in end[name])
        total += used
        lines.append(f"{name} {used:.1f} s ({1000 * used / max(requests, 1):.1f} ms per request)")
    lines.append(f"service in all {total:.1f} CPU s for {requests} requests: {1000 * total / max(requests, 1):.1f} ms "
                 f"per request, so 2 cores serve about {2 * requests / max(total, 1e-9):.0f} requests/s at most")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv[1] == "snapshot":
        print(json.dumps(snapshot(int(argv[2]), int(argv[3]), argv[4])))
    else:
        start, end = (json.loads(Path(p).read_text()) for p in argv[2:4])
        print(compare(start, end, int(argv[4])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
