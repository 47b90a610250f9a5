"""Text normalisation for French and English listings, and the material vocabulary.

Firms write what they have in their own words: in French or English, singular or plural, with or
without accents, with abbreviations ("pal.", "plq") and typos ("chambre a aire"). This module turns
such text into

* tokens: lemmatised (simplemma, French then English, with a light plural rule behind), folded
  (lower case, no accents), elisions removed (l', d', qu'), stop words dropped, known
  abbreviations expanded and near-miss typos corrected towards the vocabulary;
* concepts: canonical material and use identifiers from ``seed/vocabulary.csv`` ("sciure",
  "sawdust" and "sciure de bois" all give ``sawdust``), which is how a French offer meets an
  English need.

Everything is cached: the same words come back again and again in a market place.
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import functools
import math
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import simplemma
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from matchmaking.matching import nomenclature

MATERIAL = "material"
USE = "use"
ABBREV = "abbrev"

# --------------------------------------------------------------------------------------------
# Folding and tokens
# --------------------------------------------------------------------------------------------

_LIGATURES = {"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss", "’": "'", "`": "'", "´": "'"}


def _build_fold_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for code in range(0x00C0, 0x0250):
        char = chr(code)
        decomposed = unicodedata.normalize("NFKD", char)
        base = "".join(c for c in decomposed if not unicodedata.combining(c))
        if base != char and base.isascii():
            table[code] = base.lower()
    for char, repl in _LIGATURES.items():
        table[ord(char)] = repl
    return table


_FOLD_TABLE = _build_fold_table()


def fold(text: str) -> str:
    """Lower case without accents or ligatures: "Drêches Œufs" → "dreches oeufs"."""
    return text.lower().translate(_FOLD_TABLE)


STOP_WORDS_FR = frozenset(
    [
        "a",
        "au",
        "aux",
        "avec",
        "ce",
        "ces",
        "cet",
        "cette",
        "dans",
        "de",
        "des",
        "du",
        "en",
        "et",
        "est",
        "etre",
        "il",
        "ils",
        "elle",
        "elles",
        "je",
        "la",
        "le",
        "les",
        "leur",
        "leurs",
        "lui",
        "ma",
        "mais",
        "me",
        "meme",
        "mes",
        "moi",
        "mon",
        "ne",
        "nos",
        "notre",
        "nous",
        "on",
        "ou",
        "par",
        "pas",
        "pour",
        "qu",
        "que",
        "qui",
        "sa",
        "se",
        "ses",
        "son",
        "sur",
        "ta",
        "te",
        "tes",
        "toi",
        "ton",
        "tu",
        "un",
        "une",
        "vos",
        "votre",
        "vous",
        "y",
        "c",
        "d",
        "j",
        "l",
        "m",
        "n",
        "s",
        "t",
        "ete",
        "sont",
        "ont",
        "avons",
        "sera",
        "sans",
        "sous",
        "chez",
        "entre",
        "vers",
        "apres",
        "avant",
        "plus",
        "moins",
        "tres",
        "tout",
        "tous",
        "toute",
        "toutes",
        "autre",
        "autres",
        "aussi",
        "ainsi",
        "dont",
        "oui",
        "afin",
        "lors",
        "selon",
        "depuis",
        "pendant",
        "puis",
        "peu",
        "ici",
        "cela",
        "ceci",
        "comme",
        "donc",
        "car",
        "si",
        "soit",
        "chaque",
        "quelque",
        "quelques",
        "env",
        "environ",
        "via",
        "etc",
        "an",
        "ans",
        "par",
        "jour",
        "mois",
        "semaine",
        "annee",
        "tonne",
        "tonnes",
        "kg",
        "litre",
        "litres",
        "m3",
        "t",
    ]
)
STOP_WORDS_EN = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "being",
        "but",
        "by",
        "for",
        "from",
        "has",
        "have",
        "he",
        "her",
        "his",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "our",
        "out",
        "she",
        "so",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "too",
        "up",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "can",
        "could",
        "may",
        "might",
        "must",
        "shall",
        "should",
        "do",
        "does",
        "did",
        "done",
        "not",
        "no",
        "yes",
        "all",
        "any",
        "both",
        "each",
        "few",
        "more",
        "most",
        "other",
        "some",
        "own",
        "same",
        "very",
        "just",
        "also",
        "about",
        "after",
        "before",
        "per",
        "via",
        "etc",
        "year",
        "years",
        "day",
        "days",
        "week",
        "weeks",
        "month",
        "months",
        "ton",
        "tons",
        "tonne",
        "tonnes",
        "kg",
        "ha",
        "approx",
        "approximately",
        "around",
    ]
)
STOP_WORDS = STOP_WORDS_FR | STOP_WORDS_EN

# Ordinary words that look like a near-miss of a vocabulary word ("place" / "placo", "gamme" /
# "gomme", "cidre" / "cire", "bout" / "boue", "sold" / "solid"): never "corrected".
_COMMON = """
    place places lieu lieux mise prix gamme gammes bout bouts cidre cidres port ports pays deux trois
    quatre cinq cave caves grand grande grands petit petite petits gros grosse lot lots tas sac cours
    vente achat besoin besoins offre offres propose proposons cherche cherchons recherche donne don
    gratuit gratuite disponible disponibles enlevement livraison livre livres livree transport
    regulier reguliere ponctuel ponctuelle hebdomadaire mensuel mensuelle annuel annuelle etat bon
    bonne neuf neuve propre propres sec seche secs humide humides sale sales trie triee tries triees
    broye broyes entier entiere entiers partie parties fin fins debut suite type format taille poids
    volume benne bennes vrac palettise carton conditionne stocke stockee site sites ville region
    depot atelier ateliers magasin magasins boutique rayon rayons client clients partenaire
    partenaires collecte tournee tournees collecteur local locale locaux nord sud est ouest centre
    charente charentes savoie loire marne aube gard fumer fume fumee fumees fumoir
    sold sale sell sells sent send tied tie tier tiers part parts party parties grid grids speed
    speeds make makes made making used uses using use large small big new old clean dry wet mixed
    whole full half day week month year site sites plant plants yard yards shop shops store stores
    local area areas city town county north south east west centre center pads pad tube tubes
    produced produces producer activities activity bottled bottling capture captured company
    companies firm firms group groups supply supplied supplier suppliers customer customers
"""
COMMON_WORDS = frozenset(_COMMON.split())

_ELISION = re.compile(r"\b(?:l|d|qu|j|n|s|c|m|t|jusqu|lorsqu|puisqu)'")
_SPLIT = re.compile(r"[^a-z0-9]+")
_HAS_LETTER = re.compile(r"[a-z]")


@functools.lru_cache(maxsize=200_000)
def stem(token: str) -> str:
    """A light, symmetric plural rule for folded words that the lemmatiser does not know.

    ``raw_words`` has already lemmatised the words it knows ("drêches" → "drêche", "pneus" →
    "pneu", "métaux" → "métal", "ashes" → "ash"); what is left of a plural is a final s or x
    ("gravats", "plaquettes"), never a French "-ches" cut as an English "-es" ("planches").
    """
    n = len(token)
    if n <= 3:
        return token
    if token.endswith("eaux"):
        return token[:-1]
    if token.endswith("aux") and n > 4:
        return token[:-3] + "al"
    if token.endswith("ies") and n > 4:
        return token[:-3] + "y"
    if token.endswith(("ss", "us", "is")):
        return token
    if token.endswith(("s", "x")):
        return token[:-1]
    return token


# French first: a word both languages know is read as French ("films", "cartons").
LEMMA_LANGS = ("fr", "en")
_WORD_SPLIT = re.compile(r"[\W_]+")


@functools.lru_cache(maxsize=200_000)
def _lemma(word: str) -> tuple[str, ...]:
    """A lower-case word as written, lemmatised with its accents (simplemma's dictionaries know
    "drêches", not "dreches"), then folded."""
    folded = fold(word)
    if folded in STOP_WORDS or len(folded) <= 3 or not word.isalpha():
        return tuple(w for w in _SPLIT.split(folded) if w)
    lemma = fold(simplemma.lemmatize(word, lang=LEMMA_LANGS))
    return tuple(w for w in _SPLIT.split(lemma) if w)


def written_words(text: str) -> list[str]:
    """Folded words as written (no lemma): what a typo is compared with ("copaux", "copeaux")."""
    return [w for w in _SPLIT.split(_ELISION.sub(" ", fold(text))) if w]


def raw_words(text: str) -> list[str]:
    """Folded lemmas with elisions removed, before stop words and the plural rule."""
    lowered = _ELISION.sub(" ", text.lower().replace("’", "'").replace("`", "'").replace("´", "'"))
    return [w for word in _WORD_SPLIT.split(lowered) if word for w in _lemma(word)]


def tokenize(text: str) -> list[str]:
    """Folded, stop-word-free, stemmed tokens (no abbreviation expansion, no typo correction)."""
    return [stem(w) for w in raw_words(text) if w not in STOP_WORDS and len(w) > 1 and _HAS_LETTER.search(w)]


# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Concept:
    id: str
    kind: str  # material | use
    family: str | None
    parent: str | None
    label_fr: str
    label_en: str


@dataclass(frozen=True, slots=True)
class Analysis:
    """What the engine retains from one piece of text."""

    tokens: tuple[str, ...]
    concepts: tuple[str, ...]  # distinct, in order of appearance
    surfaces: dict[str, str] = field(default_factory=dict)  # token or concept → a word as written
    use_tokens: frozenset[str] = frozenset()  # tokens read as part of a use ("water treatment")
    # Materials named inside a use: "zinc production", "glass fibre production", "paper mill".
    # What a buyer makes is often what it takes back as a secondary raw material.
    embedded: tuple[str, ...] = ()

    @property
    def materials(self) -> tuple[str, ...]:
        vocab = vocabulary()
        return tuple(c for c in self.concepts if vocab.concepts[c].kind == MATERIAL)

    @property
    def uses(self) -> tuple[str, ...]:
        vocab = vocabulary()
        return tuple(c for c in self.concepts if vocab.concepts[c].kind == USE)


_UNKNOWN = ""  # not looked up yet (no word is empty)


class Vocabulary:
    """Material and use concepts with their French and English terms, abbreviations and typos."""

    max_phrase = 5

    def __init__(self, rows: Iterable[dict[str, str]], extra_words: Iterable[str] = ()) -> None:
        self.concepts: dict[str, Concept] = {}
        self.phrases: dict[tuple[str, ...], tuple[str, ...]] = {}
        self.abbreviations: dict[str, tuple[str, ...]] = {}
        phrase_lists: dict[tuple[str, ...], list[str]] = {}
        written: set[str] = set()
        for row in rows:
            cid = row["concept"].strip()
            kind = row["kind"].strip()
            terms_fr = [t.strip() for t in row["terms_fr"].split("|") if t.strip()]
            terms_en = [t.strip() for t in row["terms_en"].split("|") if t.strip()]
            if kind == ABBREV:
                written.update(w for t in terms_fr for w in written_words(t))
                if terms_fr:
                    self.abbreviations[fold(cid)] = tuple(tokenize(terms_fr[0]))
                continue
            self.concepts[cid] = Concept(
                id=cid,
                kind=kind,
                family=row["family"].strip() or None,
                parent=row["parent"].strip() or None,
                label_fr=terms_fr[0] if terms_fr else cid,
                label_en=terms_en[0] if terms_en else cid,
            )
            for term in terms_fr + terms_en:
                written.update(written_words(term))
                key = tuple(tokenize(term))
                if not key:
                    continue
                bucket = phrase_lists.setdefault(key, [])
                if cid not in bucket:
                    bucket.append(cid)
        self.phrases = {k: tuple(v) for k, v in phrase_lists.items()}
        self.max_phrase = max((len(k) for k in self.phrases), default=1)
        vocab_tokens = {tok for key in self.phrases for tok in key}
        vocab_tokens.update(tok for exp in self.abbreviations.values() for tok in exp)
        self._correctable = sorted({w for w in written if len(w) >= 3 and w not in STOP_WORDS})
        self.known_tokens = frozenset(vocab_tokens) | frozenset(self.abbreviations)
        self.known_tokens |= frozenset(stem(w) for w in extra_words)
        self._ancestors: dict[str, tuple[str, ...]] = {}
        for cid in self.concepts:
            chain: list[str] = []
            parent = self.concepts[cid].parent
            while parent and parent in self.concepts and parent not in chain and parent != cid:
                chain.append(parent)
                parent = self.concepts[parent].parent
            self._ancestors[cid] = tuple(chain)
        self._analyse = functools.lru_cache(maxsize=200_000)(self._analyse_uncached)
        self._correct = functools.lru_cache(maxsize=200_000)(self._correct_uncached)
        self._nearest_found: dict[str, str | None] = {}  # see ``prefetch``

    # -- concepts ------------------------------------------------------------------------------
    def ancestors(self, concept: str) -> tuple[str, ...]:
        return self._ancestors.get(concept, ())

    def family_of(self, concept: str) -> str | None:
        c = self.concepts.get(concept)
        if c is None:
            return None
        if c.family:
            return c.family
        for parent in self.ancestors(concept):
            fam = self.concepts[parent].family
            if fam:
                return fam
        return None

    def label(self, concept: str, lang: str = "fr") -> str:
        c = self.concepts.get(concept)
        if c is None:
            return concept
        return c.label_fr if lang == "fr" else c.label_en

    def by_kind(self, kind: str) -> list[str]:
        return [cid for cid, c in self.concepts.items() if c.kind == kind]

    # -- analysis ------------------------------------------------------------------------------
    def _correct_uncached(self, word: str) -> tuple[str, ...]:
        """Stemmed tokens for one folded word: abbreviation expansion, else typo correction.

        The correction compares the word as written (not its stem) with the vocabulary's words as
        written, so that "copaux" finds "copeaux" and "aire" finds "air".
        """
        if word in self.abbreviations:
            return self.abbreviations[word]
        token = stem(word)
        if not self._searched(word, token):
            return (token,)
        max_edits = 1 if len(word) < 9 else 2
        # Best by indel ratio (prefers a dropped or added letter), then bounded by the
        # Levenshtein distance so that only genuine near-misses are corrected.
        candidate = self._nearest(word)
        if candidate is None:
            return (token,)
        # A typo rarely changes the first letter; demanding it avoids "drain" → "grain".
        if candidate[0] != word[0] or OSA.distance(word, candidate) > max_edits:
            return (token,)
        # In a short word a changed letter makes another word more often than a typo ("gamme",
        # "gomme"); a dropped, doubled or swapped letter stays a typo ("aire", "air").
        if len(word) <= 5 and len(candidate) == len(word) and sorted(candidate) != sorted(word):
            return (token,)
        return tuple(stem(w) for w in _lemma(candidate))

    def _searched(self, word: str, token: str) -> bool:
        """Whether a word that is no abbreviation is looked up among the vocabulary's words."""
        return not (token in self.known_tokens or len(word) < 4 or word.isdigit() or word in COMMON_WORDS)

    def _nearest(self, word: str) -> str | None:
        """The vocabulary word of best indel ratio with ``word`` (the first of equals), if it
        reaches 70."""
        found = self._nearest_found.pop(word, _UNKNOWN)
        if found != _UNKNOWN:
            return found
        best = process.extractOne(word, self._correctable, scorer=fuzz.ratio, score_cutoff=70)
        return None if best is None else best[0]

    def prefetch(self, texts: Iterable[str]) -> None:
        """Look up at once the words of ``texts`` that ``analyse`` will search for (one rapidfuzz
        ``cdist`` costs a tenth of a search per word), for ``_nearest`` to take; replaces those
        of the previous call."""
        words = sorted(
            {
                w
                for t in texts
                for w in raw_words(t)
                if not self._noise(w) and w not in self.abbreviations and self._searched(w, stem(w))
            }
        )
        found: dict[str, str | None] = {}
        for start in range(0, len(words), 512):  # 512 × the vocabulary's words at a time
            batch = words[start : start + 512]
            ratios = process.cdist(
                batch, self._correctable, scorer=fuzz.ratio, score_cutoff=70, dtype=np.float64, workers=-1
            )
            best = ratios.argmax(axis=1)  # the first of equals, as ``extractOne``
            for word, j, row in zip(batch, best.tolist(), ratios, strict=True):
                found[word] = self._correctable[j] if row[j] >= 70 else None
        self._nearest_found = found

    @staticmethod
    def _noise(word: str) -> bool:
        # "pal" and other abbreviations are never stop words; single letters are noise.
        return word in STOP_WORDS or len(word) <= 1 or not _HAS_LETTER.search(word)

    def _analyse_uncached(self, text: str) -> Analysis:
        surfaces: dict[str, str] = {}
        tokens: list[str] = []
        for word in raw_words(text):
            if self._noise(word) and word not in self.abbreviations:
                continue
            for tok in self._correct(word):
                tokens.append(tok)
                surfaces.setdefault(tok, word)
        concepts: list[str] = []
        embedded: list[str] = []
        use_tokens: set[str] = set()
        phrases = self.phrases
        i = 0
        n = len(tokens)
        while i < n:
            step = 1
            for size in range(min(self.max_phrase, n - i), 0, -1):
                span = tuple(tokens[i : i + size])
                hit = phrases.get(span)
                if hit is not None:
                    for cid in hit:
                        if cid not in concepts:
                            concepts.append(cid)
                            surfaces.setdefault(cid, " ".join(span))
                    if all(self.concepts[c].kind == USE for c in hit):
                        use_tokens.update(span)
                        if size > 1:
                            embedded.extend(c for c in self._materials_inside(span) if c not in embedded)
                    step = size
                    break
            i += step
        return Analysis(
            tokens=tuple(tokens),
            concepts=tuple(concepts),
            surfaces=surfaces,
            use_tokens=frozenset(use_tokens),
            embedded=tuple(embedded),
        )

    def _materials_inside(self, span: tuple[str, ...]) -> list[str]:
        """Material concepts named by a proper part of a use phrase, longest parts first."""
        found: list[str] = []
        n = len(span)
        for size in range(n - 1, 0, -1):
            for start in range(0, n - size + 1):
                for cid in self.phrases.get(span[start : start + size], ()):
                    if self.concepts[cid].kind == MATERIAL and cid not in found:
                        found.append(cid)
            if found:
                break
        return found

    def analyse(self, text: str) -> Analysis:
        """Tokens and concepts of ``text`` (cached)."""
        return self._analyse(text)


# Where a by-product comes from, as firms write it: "Soil separated during sugar beet washing",
# "Sludge from the municipal waste water treatment plant", "Lactosérum issu de la fabrication du
# Comté". What follows such a marker names the source, not the material on offer.
_ORIGIN_MARKER = re.compile(
    r"\b(?:from|during|generated\s+(?:by|in|at|during)|produced\s+(?:by|in|at|during)|arising\s+from"
    r"|left\s+(?:over\s+)?from|recovered\s+from|separated\s+(?:from|during)"
    r"|issue?s?\s+d[eu']|issue?s?\s+des|provenant\s+d[eu']|provenant\s+des|lors\s+d[eu']|lors\s+des"
    r"|g[ée]n[ée]r[ée]e?s?\s+par|produite?s?\s+par|r[ée]cup[ée]r[ée]e?s?\s+(?:chez|dans|sur|aupr[èe]s)"
    r"|(?:d[eu]|de\s+la|des)\s+(?:fabrication|production)\s+d[eu']"
    r")",
    re.IGNORECASE,
)
_CLAUSE_END = re.compile(r"[,;:(]")


def split_origin(text: str) -> tuple[str, str]:
    """(what it is, where it comes from): ("Sludge", "the municipal waste water treatment plant").

    Only the first marker counts, and the origin runs to the next comma, semicolon or colon; what
    follows stays with the head. Text without a marker, or whose head would be empty, is returned
    whole.
    """
    m = _ORIGIN_MARKER.search(text)
    if m is None:
        return text, ""
    head = text[: m.start()].strip(" ,;-")
    if not _HAS_LETTER.search(fold(head)):
        return text, ""
    rest = text[m.end() :]
    end = _CLAUSE_END.search(rest)
    origin = rest[: end.start()] if end else rest
    tail = rest[end.start() :] if end else ""
    return (head + " " + tail.lstrip(",;: ")).strip(), origin.strip()


_PURPOSE_MARKER = re.compile(r"\b(?:for|pour)\b", re.IGNORECASE)


def split_purpose(text: str) -> tuple[str, str]:
    """(what a buyer wants, what for): ("Raw material", "cement production"), ("Aliment", "les vaches").

    The part after the first "for"/"pour" names the buyer's use or business: a material named
    there is what the buyer makes ("for a paper manufacturer"), not what it asks for. Text without
    a marker, or with nothing before it, is returned whole as the want.
    """
    m = _PURPOSE_MARKER.search(text)
    if m is None:
        return text, ""
    want = text[: m.start()].strip(" ,;-")
    if not _HAS_LETTER.search(fold(want)):
        return text, ""
    return want, text[m.end() :].strip()


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@functools.cache
def _vocabulary(directory: Path) -> Vocabulary:
    rows = _read_csv(directory / "vocabulary.csv")
    extra: list[str] = []
    try:
        for entry in nomenclature.list_of_waste():
            extra.extend(raw_words(entry.label_fr))
            extra.extend(raw_words(entry.label_en))
    except FileNotFoundError:  # a seed directory without the List of Waste still works
        pass
    return Vocabulary(rows, extra_words=extra)


@functools.lru_cache(maxsize=16)
def _seed_dir_for(override: str | None) -> Path:
    return nomenclature.seed_dir()


# Set inside ``seed_dir_pinned``: reading the environment takes microseconds, and building the
# profiles of an index asks for the seed directory hundreds of thousands of times.
_PINNED_SEED_DIR: contextvars.ContextVar[Path | None] = contextvars.ContextVar("pinned_seed_dir", default=None)


def seed_dir() -> Path:
    """``nomenclature.seed_dir()``, resolved once per value of its environment override."""
    pinned = _PINNED_SEED_DIR.get()
    if pinned is not None:
        return pinned
    return _seed_dir_for(os.environ.get(nomenclature.SEED_DIR_ENV))


@contextlib.contextmanager
def seed_dir_pinned() -> Iterator[None]:
    """Within: ``seed_dir()`` is the directory it was on entry, without reading the environment."""
    token = _PINNED_SEED_DIR.set(seed_dir())
    try:
        yield
    finally:
        _PINNED_SEED_DIR.reset(token)


def vocabulary() -> Vocabulary:
    """The shipped vocabulary (``seed/vocabulary.csv``), loaded once per seed directory."""
    return _vocabulary(seed_dir())


def analyse(text: str) -> Analysis:
    return vocabulary().analyse(text)


# --------------------------------------------------------------------------------------------
# Term weights and similarity
# --------------------------------------------------------------------------------------------

# Words that say nothing about the material or its use: kept out of the similarity entirely.
GENERIC_WORDS = frozenset(
    stem(w)
    for w in [
        "dechet",
        "dechets",
        "waste",
        "wastes",
        "residu",
        "residus",
        "residue",
        "residues",
        "sous",
        "produit",
        "produits",
        "product",
        "products",
        "coproduit",
        "coproduits",
        "byproduct",
        "material",
        "materials",
        "matiere",
        "matieres",
        "materiau",
        "materiaux",
        "raw",
        "premiere",
        "first",
        "used",
        "usage",
        "usagee",
        "usages",
        "issu",
        "issue",
        "issus",
        "issues",
        "provenant",
        "contenant",
        "containing",
        "other",
        "autre",
        "autres",
        "mentioned",
        "visee",
        "vise",
        "visees",
        "rubrique",
        "rubriques",
        "specified",
        "specifie",
        "ailleurs",
        "elsewhere",
        "non",
        "type",
        "types",
        "divers",
        "various",
        "mixed",
        "melange",
        "production",
        "produce",
        "fabrication",
        "manufacture",
        "manufacturing",
        "industry",
        "industrie",
        "industriel",
        "industrielle",
        "entreprise",
        "entreprises",
        "company",
        "companies",
        "firm",
        "site",
        "usine",
        "plant",
        "activite",
        "activity",
        "service",
        "services",
        "treatment",
        "traitement",
        "third",
        "party",
        "donor",
        "receiver",
        "tiers",
        "apres",
        "after",
        "spent",
        "surplus",
        "excess",
        "excedentaire",
        "excedentaires",
        "residual",
        "residuel",
        "residuelle",
        "residuels",
        "leftover",
        "leftovers",
        "rebut",
        "rebuts",
        "reject",
        "rejects",
        "collected",
        "collecte",
        "collectes",
        "generated",
        "genere",
        "generes",
        "recovered",
        "recupere",
        "recuperes",
        "secondary",
        "secondaire",
        "secondaires",
        "alternative",
        "alternatif",
        "alternatifs",
        "substitute",
        "substitution",
        "remplacement",
        "replacement",
        "input",
        "inputs",
        "intrant",
        "intrants",
        "feedstock",
    ]
)


@functools.cache
def _idf_table(directory: Path) -> tuple[dict[str, float], float]:
    """Inverse document frequency of tokens over a fixed background corpus.

    The corpus is the List of Waste (French and English labels) plus the vocabulary terms, so the
    weights do not move when listings are added, and a score never depends on the index content.
    """
    docs: list[set[str]] = []
    try:
        for entry in nomenclature.list_of_waste():
            docs.append(set(tokenize(entry.label_fr)))
            docs.append(set(tokenize(entry.label_en)))
    except FileNotFoundError:
        pass
    vocab = _vocabulary(directory)
    for key in vocab.phrases:
        docs.append(set(key))
    df: dict[str, int] = {}
    for doc in docs:
        for tok in doc:
            df[tok] = df.get(tok, 0) + 1
    n = len(docs)
    idf = {tok: math.log((n + 1) / (count + 1)) + 1.0 for tok, count in df.items()}
    default = math.log(n + 1) + 1.0
    return idf, default


def idf_weight(token: str) -> float:
    """Weight of a token: generic words 0, common ones low, rare or unknown ones high."""
    if token in GENERIC_WORDS:
        return 0.0
    idf, default = _idf_table(seed_dir())
    return idf.get(token, default)


def weighted_terms(tokens: Sequence[str], concepts: Sequence[str], concept_weight: float) -> dict[str, float]:
    """Sparse term weights (before L2 normalisation): tokens by IDF, concepts as ``c:<id>``."""
    weights: dict[str, float] = {}
    for tok in tokens:
        w = idf_weight(tok)
        if w > 0.0:
            weights[tok] = max(weights.get(tok, 0.0), w)
    for cid in concepts:
        weights["c:" + cid] = concept_weight
    return weights


def cosine(a: dict[str, float], b: dict[str, float]) -> float:
    """Cosine similarity of two sparse weight dicts."""
    if not a or not b:
        return 0.0
    if len(a) > len(b):
        a, b = b, a
    dot = sum(w * b[k] for k, w in a.items() if k in b)
    if dot <= 0.0:
        return 0.0
    na = math.sqrt(sum(w * w for w in a.values()))
    nb = math.sqrt(sum(w * w for w in b.values()))
    return min(1.0, dot / (na * nb))
