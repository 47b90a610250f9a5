"""Firms of the territory using the service at once: browsing pages, searching, publishing listings,
deciding on their matches. Run by tests/load/run (loopback only); ACCOUNTS names the accounts.json
written by populate.py.

Request names say what kind of request each is: "page …" for server-rendered pages, "api …" for
the JSON API; ids are folded ([id]) so that each kind of request has one line of statistics.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
from pathlib import Path
from typing import Any

from locust import HttpUser, between, events, task

WORLD = json.loads(Path(os.environ.get("ACCOUNTS", "test-output/load/accounts.json")).read_text())
ACCOUNTS = itertools.cycle(WORLD["accounts"])
LISTING_IDS = WORLD["listing_ids"]  # public ids
COMMUNES = WORLD["communes"]
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
QUERIES = ("sciure", "palettes", "chambres à air", "drêches", "ferraille", "big bags", "huile usagée", "verre",
           "cartons", "copeaux de bois", "litière pour volailles", "caoutchouc", "plastique PEHD", "fumier",
           "lactosérum", "gravats", "pneus", "textile", "solvants", "marc de pomme")
NEW_LISTINGS = (("offer", "Chutes de contreplaqué", "t", "monthly"), ("need", "Palettes pour expédition", "unit",
                "weekly"), ("offer", "Big bags polypropylène usagés", "unit", "monthly"),
                ("need", "Sciure sèche pour litière", "t", "quarterly"), ("offer", "Cartons d'emballage", "kg",
                "weekly"), ("offer", "Drêches de brasserie", "t", "weekly"))


# Seconds a person spends reading a page before the next action (THINK="min-max").
THINK_S = tuple(float(x) for x in os.environ.get("THINK", "2-8").split("-", 1))

# Every request's time, for per-minute figures beside the machine's load (locust keeps only totals).
SAMPLES: list[tuple[float, str, float, int]] = []


@events.request.add_listener
def _sample(request_type: str, name: str, response_time: float, response_length: int, response: Any = None,
            exception: Any = None, start_time: float | None = None, **kwargs: Any) -> None:
    SAMPLES.append((start_time or 0.0, name, response_time, getattr(response, "status_code", 0) or 0))


@events.reset_stats.add_listener
def _reset() -> None:
    SAMPLES.clear()


@events.quitting.add_listener
def _save(environment: Any, **kwargs: Any) -> None:
    out = os.environ.get("SAMPLES")
    if out:
        with open(out, "w") as f:
            f.writelines(f"{t:.3f},{name},{ms:.1f},{status}\n" for t, name, ms, status in SAMPLES)


class Firm(HttpUser):
    wait_time = between(*THINK_S)

    def on_start(self) -> None:
        account = next(ACCOUNTS)
        self.api = {"Authorization": f"Bearer {account['token']}"}
        page = self.client.get("/sign-in", name="page /sign-in").text
        found = TOKEN_RE.search(page)
        assert found, "no CSRF token on the sign-in page"
        self.client.post("/sign-in", name="page POST /sign-in", data={
            "csrf_token": found.group(1), "email": account["email"], "password": account["password"]})

    # --- browsing pages ---------------------------------------------------------------------------

    @task(4)
    def home(self) -> None:
        self.client.get("/", name="page /")

    @task(3)
    def dashboard(self) -> None:
        self.client.get("/my", name="page /my")

    @task(6)
    def listing_page(self) -> None:
        self.client.get(f"/listings/{random.choice(LISTING_IDS)}", name="page /listings/[id]")

    @task(3)
    def my_listings(self) -> None:
        self.client.get("/listings", name="page /listings")

    @task(4)
    def inbox(self) -> None:
        self.client.get("/matches", name="page /matches")

    @task(6)
    def search_page(self) -> None:
        self.client.get("/search", name="page /search",
                        params={"q": random.choice(QUERIES), "kind": random.choice(["offer", "need", ""])})

    # --- the API ----------------------------------------------------------------------------------

    @task(10)
    def search_api(self) -> None:
        params: dict[str, Any] = {"q": random.choice(QUERIES)}
        if random.random() < 0.5:
            params |= {"near": random.choice(COMMUNES), "radius_km": random.choice([20, 50, 100])}
        if random.random() < 0.5:
            params["kind"] = random.choice(["offer", "need"])
        self.client.get("/api/v1/search", name="api GET /search", params=params, headers=self.api)

    @task(3)
    def listing_api(self) -> None:
        with self.client.get(f"/api/v1/listings/{random.choice(LISTING_IDS)}", name="api GET /listings/[id]",
                             headers=self.api, catch_response=True) as response:
            if response.status_code == 404:  # closed by its firm meanwhile: an answer, not an error
                response.success()

    @task(2)
    def publish(self) -> None:
        kind, title, unit, frequency = random.choice(NEW_LISTINGS)
        body = {"kind": kind, "title": title, "quantity": random.choice([1, 2.5, 10, 40]), "unit": unit,
                "frequency": frequency}
        if kind == "need":
            body["radius_km"] = random.choice([30, 60, 100])
        self.client.post("/api/v1/listings", name="api POST /listings", json=body, headers=self.api)

    @task(4)
    def decide(self) -> None:
        response = self.client.get("/api/v1/matches", name="api GET /matches", params={"per_page": 20},
                                   headers=self.api)
        if response.status_code != 200:
            return
        open_ = [m for m in response.json() if m["status"] in ("proposed", "interested")]
        if not open_:
            return
        match = random.choice(open_)
        action = random.choices(["interest", "accept", "decline"], weights=[5, 3, 1])[0]
        with self.client.post(f"/api/v1/matches/{match['match_id']}/{action}", name=f"api POST /matches/[id]/{action}",
                              headers=self.api, catch_response=True) as answer:
            if answer.status_code == 409:  # the other firm decided first: the answer says so
                answer.success()

    @task(2)
    def match_page(self) -> None:
        response = self.client.get("/api/v1/matches", name="api GET /matches", params={"per_page": 5},
                                   headers=self.api)
        if response.status_code == 200 and response.json():
            self.client.get(f"/matches/{random.choice(response.json())['match_id']}", name="page /matches/[id]")

    @task(1)
    def classify(self) -> None:
        self.client.post("/api/v1/classify", name="api POST /classify", json={"text": random.choice(QUERIES)},
                         headers=self.api)
