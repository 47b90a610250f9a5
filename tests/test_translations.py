"""Every user-facing string has a French translation, and the compiled catalogue is current."""

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
PO = ROOT / "matchmaking/translations/fr/LC_MESSAGES/messages.po"
MO = PO.with_suffix(".mo")


def source_messages() -> set[str]:
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        ROOT / "matchmaking", method_map, keywords=keywords
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_message_in_the_code_is_translated_to_french() -> None:
    with PO.open("rb") as handle:
        catalog = read_po(handle, locale="fr")
    translated = {
        (m.id if isinstance(m.id, str) else m.id[0])
        for m in catalog
        if m.id and m.string and (isinstance(m.string, str) or all(m.string)) and not m.fuzzy
    }
    missing = sorted(source_messages() - translated)
    assert missing == [], f"untranslated: {missing[:20]}"


def test_the_compiled_catalogue_matches_the_sources() -> None:
    def key(value):
        return value if isinstance(value, str) else tuple(value)

    with PO.open("rb") as handle:
        po = {key(m.id): key(m.string) for m in read_po(handle, locale="fr") if m.id and not m.fuzzy}
    with MO.open("rb") as handle:
        mo = {key(m.id): key(m.string) for m in read_mo(handle) if m.id}
    assert mo == po
