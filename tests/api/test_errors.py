"""Bad input never becomes a 500: every refusal is problem+json naming what was wrong."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

GOOD = {"kind": "offer", "title": "Sciure de hêtre", "quantity": 3, "unit": "t", "frequency": "monthly"}


def post_raw(api, actor, body: bytes | str, content_type: str = "application/json"):
    return api.post("/api/v1/listings", data=body, headers=actor.headers | {"Content-Type": content_type})


def test_every_route_but_registration_sign_in_and_the_document_wants_a_token(api, app) -> None:
    public = {"/api/v1/auth/register", "/api/v1/auth/token", "/api/v1/openapi.json"}
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api.") or rule.rule in public:
            continue
        path = rule.rule.replace("<public_id:listing_id>", "a" * 16).replace("<public_id:match_id>", "a" * 16)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            r = api.open(method, path, json={})
            assert r.status_code == 401, (method, path)
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert api.get("/api/v1/me", headers={"Authorization": "Bearer mmk_forged"}).status_code == 401
    assert api.get("/api/v1/me", headers={"Authorization": "Basic dXNlcjpwYXNz"}).status_code == 401


def test_malformed_json_is_a_400_problem(api, make_actor) -> None:
    actor = make_actor()
    for body in ('{"kind": "offer",', "[1, 2]", '"text"', '{"quantity": NaN}', b"\xff\xfe", "[" * 100_000):
        r = post_raw(api, actor, body)
        assert r.status_code == 400, body[:20]
        assert r.get_json()["detail"]


def test_a_body_that_is_not_json_is_refused_with_415(api, make_actor) -> None:
    r = post_raw(api, make_actor(), "kind=offer", "application/x-www-form-urlencoded")
    assert r.status_code == 415


def test_a_body_over_the_size_limit_is_a_413(api, app, make_actor) -> None:
    actor = make_actor()
    r = post_raw(api, actor, json.dumps(GOOD | {"description": "x" * (app.config["MAX_CONTENT_LENGTH"] + 10)}))
    assert r.status_code == 413


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", 5),
        ("title", ["a"]),
        ("quantity", "douze"),
        ("quantity", True),
        ("quantity", 1e300),
        ("quantity", -4),
        ("unit", "barrels"),
        ("frequency", None),
        ("anonymous", "maybe"),
        ("price_eur_per_unit", {"eur": 3}),
        ("radius_km", 1e9),
        ("available_from", "demain"),
        ("site_id", 10**12),
        ("low_code", "99 99 99"),
        ("commune_insee", "75056"),
        ("title", "nul\x00byte"),
        ("colour", "red"),
    ],
)
def test_a_bad_field_is_named_in_a_422(api, make_actor, field, value) -> None:
    r = api.post("/api/v1/listings", headers=make_actor().headers, json=GOOD | {field: value})
    assert r.status_code == 422, r.get_json()
    problem = r.get_json()
    assert field in problem["errors"]
    assert problem["type"].endswith("validation-error")


def test_integers_too_large_for_any_float_are_refused_by_name(api, make_actor) -> None:
    r = post_raw(api, make_actor(), '{"kind": "offer", "title": "x", "unit": "t", "frequency": "once", '
                                    '"quantity": 1' + "0" * 400 + "}")
    assert r.status_code == 422 and "quantity" in r.get_json()["errors"]
    r = post_raw(api, make_actor(), '{"kind": "offer", "title": "x", "unit": "t", "frequency": "once", '
                                    '"quantity": 1' + "0" * 5000 + "}")
    assert r.status_code in (400, 422)
    r = post_raw(api, make_actor(), '{"kind": "offer", "title": "x", "unit": "t", "frequency": "once", '
                                    '"quantity": 1e999}')
    assert r.status_code == 422 and "quantity" in r.get_json()["errors"]


def test_missing_fields_are_each_named(api, make_actor) -> None:
    r = api.post("/api/v1/listings", headers=make_actor().headers, json={})
    assert set(r.get_json()["errors"]) == {"kind", "title", "quantity", "unit", "frequency"}


def test_bad_query_parameters_are_named(api, make_actor) -> None:
    actor = make_actor()
    for query, field in (("page=0", "page"), ("per_page=abc", "per_page"), ("per_page=1000", "per_page"),
                         ("kind=gift", "kind"), ("mine=perhaps", "mine")):
        r = api.get(f"/api/v1/listings?{query}", headers=actor.headers)
        assert r.status_code == 422 and field in r.get_json()["errors"], query
    r = api.get("/api/v1/search?q=bois&radius_km=-3&near=1,2,3", headers=actor.headers)
    assert r.status_code == 422 and {"radius_km"} <= set(r.get_json()["errors"])
    r = api.get("/api/v1/search?q=bois&near=nowhere", headers=actor.headers)
    assert r.status_code == 422 and "near" in r.get_json()["errors"]
    r = api.get("/api/v1/search?q=bois&near=%00", headers=actor.headers)
    assert r.status_code == 422


def test_unknown_routes_wrong_methods_and_huge_ids_answer_as_problems(api, make_actor) -> None:
    actor = make_actor()
    assert api.get("/api/v1/nothing-here", headers=actor.headers).status_code == 404
    r = api.open("PUT", "/api/v1/listings/" + "a" * 16, headers=actor.headers, json=GOOD)
    assert r.status_code == 405 and "PATCH" in r.headers["Allow"]
    assert api.get("/api/v1/listings/99999999999999999999", headers=actor.headers).status_code == 404
    assert api.get("/api/v1/listings/123456", headers=actor.headers).status_code == 404


def test_messages_are_french_by_default_and_english_on_request(api, make_actor) -> None:
    actor = make_actor()
    fr = api.post("/api/v1/listings", headers=actor.headers, json=GOOD | {"quantity": "douze"}).get_json()
    en = api.post("/api/v1/listings", headers=actor.headers | {"Accept-Language": "en"},
                  json=GOOD | {"quantity": "douze"}).get_json()
    assert en["errors"]["quantity"] == "This field must be a number."
    assert fr["errors"]["quantity"] != en["errors"]["quantity"]
    assert fr["title"] == "Données invalides" and en["title"] == "Invalid data"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=8,
)
listing_fields = st.sampled_from(
    ["kind", "title", "quantity", "unit", "frequency", "anonymous", "price_eur_per_unit", "radius_km",
     "available_from", "available_until", "low_code", "material_family", "commune_insee", "site_id", "status"]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(listing_fields, json_values, max_size=4))
def test_no_body_makes_the_server_fail(api, make_actor, changes) -> None:
    actor = make_actor()
    r = api.post("/api/v1/listings", headers=actor.headers, json=GOOD | changes)
    # 400: the test client writes non-finite floats as Infinity/NaN, which is not JSON.
    assert r.status_code in (201, 400, 422)
    if r.status_code == 201:
        patch = api.patch(f"/api/v1/listings/{r.get_json()['id']}", headers=actor.headers, json=changes)
        assert patch.status_code in (200, 400, 422)


def test_an_unexpected_failure_is_a_bare_500_problem(api, make_actor, monkeypatch) -> None:
    from matchmaking.services import queries

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(queries, "published_listings", broken)
    r = api.get("/api/v1/listings", headers=make_actor().headers)
    assert r.status_code == 500
    assert "secret internals" not in r.data.decode() and "Traceback" not in r.data.decode()
