"""The README's first command, step by step, on a fresh SQLite database: the embedded default."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.sqlite_only

CLI = [sys.executable, "-m", "matchmaking.cli"]


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    environment["DATABASE_URL"] = "sqlite:///" + str(tmp_path / "cli.sqlite3")
    environment["SECRET_KEY"] = "cli-test"
    return environment


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=300)


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_init_seed_twice_create_user_and_serve(env: dict[str, str]) -> None:
    assert run(env, "init-db").returncode == 0
    first = run(env, "seed", "--demo")
    assert first.returncode == 0, first.stderr
    assert "demo listings: 0 written" not in first.stdout
    second = run(env, "seed", "--demo")
    assert second.returncode == 0
    assert all(line.endswith(": 0 written") for line in second.stdout.splitlines() if "written" in line)

    created = run(env, "users", "create", "--email", "anne@ccma.example.fr", "--password", "une phrase secrete",
                  "--role", "analyst")
    assert created.returncode == 0, created.stderr
    assert "une phrase secrete" not in created.stdout + created.stderr
    refused = run(env, "users", "create", "--email", "not-an-email", "--password", "x", "--role", "analyst")
    assert refused.returncode == 2
    assert "email" in refused.stderr and "password" in refused.stderr

    port = free_port()
    server = subprocess.Popen([*CLI, "run", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                html = fetch(f"http://127.0.0.1:{port}/")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        assert html.count('<li class="card') == 30  # a full first page of the demo territory
        offers = "".join(fetch(f"http://127.0.0.1:{port}/?kind=offer&page={n}") for n in range(1, 6))
        assert "Chutes de chambres à air" in offers  # the bike shop's inner tubes are published
    finally:
        server.terminate()
        server.wait(timeout=10)
