from openapi_spec_validator import validate

API_MD_ROUTES = {
    ("post", "/api/v1/auth/register"), ("post", "/api/v1/auth/token"),
    ("post", "/api/v1/listings"), ("get", "/api/v1/listings"), ("get", "/api/v1/listings/{listing_id}"),
    ("patch", "/api/v1/listings/{listing_id}"), ("delete", "/api/v1/listings/{listing_id}"),
    ("get", "/api/v1/listings/{listing_id}/matches"), ("get", "/api/v1/search"), ("post", "/api/v1/classify"),
    ("get", "/api/v1/matches"), ("post", "/api/v1/matches/{match_id}/interest"),
    ("post", "/api/v1/matches/{match_id}/accept"), ("post", "/api/v1/matches/{match_id}/decline"),
    ("post", "/api/v1/matches/{match_id}/exchanges"),
}


def served(app) -> set[tuple[str, str]]:
    import re

    out = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = re.sub(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>", r"{\1}", rule.rule)
            out |= {(method.lower(), path) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return out


def documented(spec) -> set[tuple[str, str]]:
    return {(method, path) for path, ops in spec["paths"].items() for method in ops}


def test_the_document_is_valid_openapi_3(api) -> None:
    r = api.get("/api/v1/openapi.json")
    assert r.status_code == 200 and r.mimetype == "application/json"
    spec = r.get_json()
    assert spec["openapi"].startswith("3.")
    validate(spec)


def test_the_document_lists_exactly_the_routes_served_and_every_route_of_the_contract(api, app) -> None:
    spec = api.get("/api/v1/openapi.json").get_json()
    assert documented(spec) == served(app)
    assert documented(spec) >= API_MD_ROUTES


def test_every_operation_documents_its_errors_as_problems(api) -> None:
    spec = api.get("/api/v1/openapi.json").get_json()
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if op.get("security") != []:
                assert "401" in op["responses"], (method, path)
            for status, response in op["responses"].items():
                if int(status) >= 400:
                    assert list(response["content"]) == ["application/problem+json"], (method, path, status)
            if "requestBody" in op:
                assert {"400", "422"} <= set(op["responses"]), (method, path)
