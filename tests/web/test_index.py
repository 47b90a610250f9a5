from tests.factories import make_firm, make_listing


def test_the_first_page_lists_published_listings_in_french(client, session) -> None:
    firm = make_firm(session, name="Cycles du Mont")
    make_listing(session, firm, title="Chutes de chambres à air")
    session.commit()
    page = client.get("/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Chutes de chambres à air" in html
    assert "Cycles du Mont" in html
    assert 'lang="fr"' in html


def test_english_on_request(client, session) -> None:
    make_listing(session, make_firm(session))
    session.commit()
    html = client.get("/?lang=en").get_data(as_text=True)
    assert 'lang="en"' in html
    assert "offer" in html


def test_an_anonymous_listing_hides_its_firm(client, session) -> None:
    firm = make_firm(session, name="Laiterie Secrète")
    make_listing(session, firm, title="Lactosérum", anonymous=True)
    session.commit()
    html = client.get("/").get_data(as_text=True)
    assert "Lactosérum" in html
    assert "Laiterie Secrète" not in html


def test_the_kind_filter_and_a_bad_page_number_never_fail(client, session) -> None:
    firm = make_firm(session)
    make_listing(session, firm, title="Palettes cassées")
    make_listing(session, firm, kind="need", title="Sciure pour litière", radius_km=40)
    session.commit()
    needs = client.get("/?kind=need").get_data(as_text=True)
    assert "Sciure pour litière" in needs and "Palettes cassées" not in needs
    assert client.get("/?page=-4&kind=zzz").status_code == 200
