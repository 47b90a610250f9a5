"""The id-order probe: nothing a stranger sees places an anonymous listing among its firm's named ones.

A firm imports, twelve times, a file of three rows — named, anonymous, named — as a firm putting its
catalogue online does. Before public ids, the three got consecutive integer ids and times a few
milliseconds apart (201, 202, 203 within 38 ms; 201 and 203 showing the firm), and every list ordered
them by creation: the anonymous one sat between two listings that named its firm. A third firm now
reads the territory's listings through the API and the home page, one listing at a time, and search:
  * ids are opaque strings (random: they follow neither creation nor one another);
  * an anonymous listing's created, updated and published times are a day, not an instant
    (its owner and CCMA staff still see the instant);
  * a list of one day's listings is in the order of their public ids, so the anonymous listing of an
    import sits between its named ones about one time in three, as chance has it, not every time.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from matchmaking.models import PUBLIC_ID_ALPHABET, PUBLIC_ID_LENGTH, Listing, Role
from matchmaking.services import accounts, imports, matching, tokens
from tests.factories import make_firm, make_listing, make_user

IMPORTS = 12
HEADER = "référence;type;titre;quantité;unité;fréquence;anonyme\r\n"
OPAQUE = re.compile(f"^[{PUBLIC_ID_ALPHABET}]{{{PUBLIC_ID_LENGTH}}}$")
LINK = re.compile(f"/listings/([{PUBLIC_ID_ALPHABET}]{{{PUBLIC_ID_LENGTH}}})")
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TIMES = ("created_at", "updated_at", "published_at")


def _import_triples(session: Any, firm: Any) -> list[tuple[str, str, str]]:
    """(named, anonymous, named) public ids of each import, in the order the rows were written."""
    triples = []
    for n in range(IMPORTS):
        rows = (f"P{n};offre;Palettes en bois {n};2;t;mensuel;non\r\n"
                f"C{n};offre;Chutes de caoutchouc {n};1;t;mensuel;oui\r\n"
                f"S{n};offre;Sciure de chêne {n};3;t;mensuel;non\r\n")
        report = imports.import_listings(session, firm, "catalogue.csv", (HEADER + rows).encode())
        assert report.created == 3, report.row_errors
        session.flush()
        made = {listing.reference: listing for listing in session.scalars(
            select(Listing).where(Listing.firm_id == firm.id, Listing.reference.in_([f"P{n}", f"C{n}", f"S{n}"])))}
        assert [made[f"{r}{n}"].anonymous for r in "PCS"] == [False, True, False]
        triples.append(tuple(made[f"{r}{n}"].public_id for r in "PCS"))  # type: ignore[arg-type]
    return triples


def _between(order: list[str], triple: tuple[str, str, str]) -> bool:
    first, hidden, last = (order.index(public_id) for public_id in triple)
    return min(first, last) < hidden < max(first, last)


def test_a_stranger_cannot_tell_which_anonymous_listing_sits_between_a_firms_named_ones(
        app: Any, session: Any, client: Any, capsys: Any) -> None:
    firm = make_firm(session, name="Scierie du Probe")
    decoy = make_firm(session, name="Autre Entreprise", commune_insee="53147")
    stranger_firm = make_firm(session, name="Tierce Entreprise", commune_insee="53017")
    owner = make_user(session, firm)
    stranger = make_user(session, stranger_firm)
    facilitator = make_user(session, None, role=Role.facilitator.value)
    make_listing(session, decoy, title="Chutes de caoutchouc d'un autre", anonymous=True)
    triples = _import_triples(session, firm)
    make_listing(session, decoy, title="Palettes en bois d'un autre")
    bearer = {role: {"Authorization": f"Bearer {tokens.issue(session, user)}"}
              for role, user in (("stranger", stranger), ("owner", owner), ("facilitator", facilitator))}
    cookie, _row = accounts.start_session(session, stranger)
    session.commit()
    matching.reset_index()
    hidden_ids = {hidden for _named, hidden, _other in triples}

    # The API's list of the territory's listings, as the third firm reads it.
    listed = client.get("/api/v1/listings?per_page=100", headers=bearer["stranger"]).get_json()
    assert len(listed) == 3 * IMPORTS + 2
    for item in listed:
        assert isinstance(item["id"], str) and OPAQUE.match(item["id"]), item["id"]
    for item in (i for i in listed if i["id"] in hidden_ids):
        assert item["firm"] is None and item["identity_hidden"] is True
        assert all(DAY.match(item[key]) for key in TIMES), {key: item[key] for key in TIMES}
    api_order = [item["id"] for item in listed]
    assert api_order == sorted(api_order)  # one day: the public ids' order, not the making's

    # One listing at a time: the day for the stranger, the instant for the owner and CCMA staff.
    some = next(iter(hidden_ids))
    alone = client.get(f"/api/v1/listings/{some}", headers=bearer["stranger"]).get_json()
    assert all(DAY.match(alone[key]) for key in TIMES)
    for role in ("owner", "facilitator"):
        seen = client.get(f"/api/v1/listings/{some}", headers=bearer[role]).get_json()
        assert all("T" in seen[key] for key in TIMES), role

    # The home page, in its pages.
    client.set_cookie(app.config["LOGIN_COOKIE_NAME"], cookie)
    page_order: list[str] = []
    for page in (1, 2):
        html = client.get(f"/?page={page}").get_data(as_text=True)
        page_order += [found for found in LINK.findall(html) if found not in page_order]
    assert sorted(page_order) == sorted(api_order) and page_order == api_order

    # Search: equal scores come in the order of the public ids.
    hits = client.get("/api/v1/search?q=chutes+de+caoutchouc&limit=100", headers=bearer["stranger"]).get_json()
    assert hits and all(OPAQUE.match(hit["id"]) for hit in hits)
    for hit in (h for h in hits if h["id"] in hidden_ids):
        assert all(DAY.match(hit[key]) for key in TIMES)
    ranked = [(-hit["score"], hit["id"]) for hit in hits]
    assert ranked == sorted(ranked)

    between = sum(_between(api_order, triple) for triple in triples)
    with capsys.disabled():
        print(f"\nid order: {IMPORTS} imports of (named, anonymous, named) rows; the anonymous listing sits "
              f"between its named ones in {between}/{IMPORTS} by list order and by id (chance: 1/3)")
    # Every time before; (1/3)^12, about 2 in a million, if the order were still random but unlucky.
    assert between < IMPORTS
