"""What the law forbids, as data: ``seed/incompatibilities.csv``, each rule with its reference.

A rule names what an offer is (``offer``: any of its matchers) and the uses it may never serve
(``need_uses``). A matcher is ``family:SLUG``, ``concept:ID`` (a material the offer's words or codes
name), ``code:PREFIX`` (a List-of-Waste code, digits only), ``word:WORD`` (a word of the offer's
title, description or activity, read as the engine reads words), ``nace:PREFIX`` (the offer's
firm's activity), ``hazardous``, or ``only-family:A|B`` (the offer has families, none of them
listed); ``+`` joins matchers that must all hold, and ``!`` before one negates it. A need use is a
``use_*`` concept, ``concept:ID`` (a material the need names: polluted soil never makes topsoil) or
``*`` (every need but a take-back: asbestos and batteries go to their scheme). A need whose firm's
activity starts with one of ``except_need_nace`` is exempt: a fertiliser plant or a licensed waste
processor turns the material into something else, it does not spread or feed it; ``approved`` there
exempts a need that says its plant is approved ("agrément sanitaire").

These are the only vetoes besides hazard, radius and lot: knowledge never gates a pair, the law
does, and says why. Each side is reduced to a bit mask of rules once (the rules an offer falls
under, the rules whose uses a need names), so the engine vetoes millions of pairs with one ``&``.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

RULES_FILE = "incompatibilities.csv"


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    offer: tuple[tuple[tuple[str, str], ...], ...]  # any of: all of (sign + kind, value)
    uses: tuple[str, ...]
    except_need_nace: tuple[str, ...]
    reason_fr: str
    reason_en: str
    reference: str
    # The single positive matchers by kind, for a set lookup (hundreds of thousands of offers).
    single: dict[str, frozenset[str]] = field(default_factory=dict, compare=False)
    compound: tuple[tuple[tuple[str, str], ...], ...] = field(default=(), compare=False)

    def reason(self, lang: str = "fr") -> str:
        return self.reason_fr if lang == "fr" else self.reason_en


def _compiled(rule: Rule) -> Rule:
    single: dict[str, set[str]] = {}
    compound = []
    for group in rule.offer:
        if len(group) == 1 and group[0][0][0] == "=" and group[0][0][1:] in ("family", "concept", "word"):
            single.setdefault(group[0][0][1:], set()).add(group[0][1])
        else:
            compound.append(group)
    return dataclasses.replace(rule, single={k: frozenset(v) for k, v in single.items()}, compound=tuple(compound))


@dataclass(frozen=True, slots=True)
class OfferFacts:
    """What the rules read of an offer."""

    families: frozenset[str]
    materials: frozenset[str]
    codes: tuple[str, ...]  # compact digits
    words: frozenset[str]
    nace: tuple[str, ...]
    hazardous: bool


@dataclass(frozen=True, slots=True)
class Rules:
    rules: tuple[Rule, ...]  # rule ``i`` is bit ``1 << i``

    def offer_mask(self, facts: OfferFacts) -> int:
        """Bits of the rules the offer falls under."""
        return sum(1 << i for i, rule in enumerate(self.rules) if _offer_matches(rule, facts))

    def need_mask(self, uses: Iterable[str], nace: Sequence[str]) -> int:
        """Bits of the rules whose uses a need names, unless its activity is exempt."""
        named = set(uses)
        return sum(
            1 << i
            for i, rule in enumerate(self.rules)
            if (named.intersection(rule.uses) or (ANY_NEED in rule.uses and TAKE_BACK not in named))
            and not _exempt(rule, nace, APPROVED in named)
        )

    def broken(self, facts: OfferFacts, uses: Iterable[str], nace: Sequence[str]) -> list[Rule]:
        """The rules an offer breaks when it serves a need naming ``uses``."""
        mask = self.offer_mask(facts) & self.need_mask(uses, nace)
        return [rule for i, rule in enumerate(self.rules) if mask >> i & 1]


def _digits(code: str) -> str:
    return code.replace(".", "").strip()


def _exempt(rule: Rule, nace: Sequence[str], approved: bool = False) -> bool:
    if approved and APPROVED in rule.except_need_nace:
        return True
    return any(_digits(code).startswith(_digits(p)) for code in nace for p in rule.except_need_nace if p != APPROVED)


def _holds(kind: str, value: str, facts: OfferFacts) -> bool:
    if kind == "family":
        return value in facts.families
    if kind == "concept":
        return value in facts.materials
    if kind == "code":
        return any(code.startswith(value) for code in facts.codes)
    if kind == "word":
        return value in facts.words
    if kind == "nace":
        return any(_digits(code).startswith(_digits(value)) for code in facts.nace)
    if kind == "hazardous":
        return facts.hazardous
    if kind == "only-family":
        return bool(facts.families) and not facts.families.intersection(value.split("|"))
    raise ValueError(f"unknown matcher {kind!r}")


def _offer_matches(rule: Rule, facts: OfferFacts) -> bool:
    single = rule.single
    if (
        facts.families & single.get("family", frozenset())
        or facts.materials & single.get("concept", frozenset())
        or facts.words & single.get("word", frozenset())
    ):
        return True
    return any(
        all(_holds(kind[1:], value, facts) != (kind[0] == "!") for kind, value in group) for group in rule.compound
    )


_KINDS = frozenset({"family", "concept", "code", "word", "nace", "hazardous", "only-family"})


def _parse_offer(text: str, rule_id: str) -> tuple[tuple[tuple[str, str], ...], ...]:
    from matchmaking.matching.text import tokenize

    groups: list[tuple[tuple[str, str], ...]] = []
    for item in text.split():
        group: list[tuple[str, str]] = []
        for part in item.split("+"):
            negated = part.startswith("!")
            kind, _, value = part.removeprefix("!").partition(":")
            if kind not in _KINDS:
                raise ValueError(f"{RULES_FILE}, rule {rule_id}: unknown matcher {part!r}")
            if kind == "word":
                words = tokenize(value)
                if len(words) != 1:
                    raise ValueError(f"{RULES_FILE}, rule {rule_id}: {value!r} is not one word")
                value = words[0]
            group.append(("!" + kind if negated else "=" + kind, value))
        groups.append(tuple(group))
    return tuple(groups)


@functools.lru_cache(maxsize=8)
def rules_in(directory: Path) -> Rules:
    path = directory / RULES_FILE
    loaded: list[Rule] = []
    if path.exists():
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                rule_id = row["rule"].strip()
                loaded.append(_compiled(
                    Rule(
                        id=rule_id,
                        offer=_parse_offer(row["offer"], rule_id),
                        uses=tuple(u.strip() for u in row["need_uses"].split("|") if u.strip()),
                        except_need_nace=tuple(c.strip() for c in (row.get("except_need_nace") or "").split("|")
                                               if c.strip()),
                        reason_fr=row["reason_fr"].strip(),
                        reason_en=row["reason_en"].strip(),
                        reference=row["reference"].strip(),
                    )
                ))
    if len(loaded) > 62:
        raise ValueError(f"{RULES_FILE}: at most 62 rules, got {len(loaded)}")
    return Rules(rules=tuple(loaded))


def rules() -> Rules:
    from matchmaking.matching.text import seed_dir

    return rules_in(seed_dir())


# Words that deny the next one: "bois non traité", "sans peinture", "untreated" is one word already.
NEGATORS = frozenset({"non", "sans", "pas", "aucun", "aucune", "jamais", "not", "no", "without", "free"})
NEGATION_JOINERS = frozenset({"ni", "ou", "nor", "or"})
NEGATION_REACH = 2
_CLAUSE = re.compile(r"[,.;:()!?\n]")
# Uses that say where a material ends up (near food, on a vegetable plot, in a wood boiler), not what
# it becomes: a need's description names them whatever its material.
SETTING_USES = frozenset({"use_food_contact", "use_food_crops", "use_biomass_boiler", "use_public_contact"})
# A need that says its plant is approved ("agréé", "agrément sanitaire", "hygiénisation"): rules
# listing ``approved`` among their exempt activities let it take what only approved plants may.
APPROVED = "approved"
APPROVED_WORDS = frozenset({"agree", "agreer", "agrement", "hygienisation", "approved"})
# A need that says it collects or takes back a material (its words name no use) hands it on to a
# licensed outlet: no use-based rule applies to it.
TAKE_BACK = "take_back"  # what the law reads of such a need: no use, and no ``*`` rule either
TAKE_BACK_WORDS = frozenset({"collecte", "collecter", "reprise", "repriser", "reprendre", "ramassage", "collection"})
ANY_NEED = "*"  # a rule's uses: every need but a take-back (asbestos, batteries go to their scheme)


@functools.lru_cache(maxsize=65_536)
def affirmed(text: str) -> tuple[str, ...]:
    """The words of a text (as ``tokenize`` reads them) less those a negator denies: "non traité"
    does not say "traité", nor "sans colle ni vernis" "vernis", nor "pas de restes de repas" "repas"
    (a negator reaches ``NEGATION_REACH`` words of its clause, stop words aside, and "ni" or "ou"
    one further)."""
    from matchmaking.matching.text import STOP_WORDS, raw_words, stem

    out: list[str] = []
    words = (w for clause in _CLAUSE.split(text) for w in (*raw_words(clause), ","))
    reach = 0
    for word in words:
        if word == ",":  # a negation ends with its clause
            reach = 0
        elif word in NEGATORS:
            reach = NEGATION_REACH
        elif word in NEGATION_JOINERS:
            reach = max(reach, 1) if reach else 0
        elif word in STOP_WORDS or len(word) <= 1 or not any("a" <= ch <= "z" for ch in word):
            continue
        elif reach:
            reach -= 1
        else:
            out.append(stem(word))
    return tuple(out)


def offer_facts(
    families: Sequence[str],
    materials: Sequence[str],
    codes: Sequence[str],
    words: Iterable[str],
    nace: Sequence[str],
    hazardous: bool,
) -> OfferFacts:
    return OfferFacts(
        families=frozenset(families),
        materials=frozenset(materials),
        codes=tuple("".join(ch for ch in c if ch.isdigit()) for c in codes),
        words=frozenset(words),
        nace=tuple(nace),
        hazardous=hazardous,
    )
