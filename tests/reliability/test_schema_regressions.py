"""What the schemathesis run found, pinned as plain tests."""

from __future__ import annotations

import pytest

from tests.api import conftest as api_tests
from tests.api.conftest import published

# The API tests' fixtures: a client checking each answer against the document, firms with a token.
api, make_actor, fresh_index_and_limits = api_tests.api, api_tests.make_actor, api_tests.fresh_index_and_limits

BEYOND_INT = 2**31  # ids are 32-bit integers in the database: a larger id names nothing


@pytest.mark.parametrize(("method", "path"), [
    ("DELETE", f"/api/v1/listings/{BEYOND_INT}"),
    ("PATCH", f"/api/v1/listings/{7156726963}"),
    ("GET", f"/api/v1/matches/{BEYOND_INT}/exchanges"),
    ("POST", f"/api/v1/matches/{36936331562635}/exchanges"),
])
def test_an_id_beyond_the_integer_range_is_not_found_whatever_the_method(api, make_actor, method, path) -> None:
    # Werkzeug used to answer 405 here: the converter refused the id on this method's rule after
    # a rule for another method had been tried.
    actor = make_actor()
    r = api.open(method, path, headers=actor.headers, json={})
    assert r.status_code == 404, r.get_json()


def test_a_method_not_served_on_a_real_resource_is_still_405(api, session, make_actor) -> None:
    actor = make_actor()
    listing = published(session, actor.firm)
    r = api.open("PUT", f"/api/v1/listings/{listing.public_id}", headers=actor.headers, json={})
    assert r.status_code == 405 and "PATCH" in r.headers["Allow"]
