"""Claims of a long answer: sentences, and how well one text's claims are covered by another's.

``split_claims(text)`` cuts a text into claims: sentences (ended by ``.``, ``!`` or ``?`` before a
space, or by a line break; a leading bullet or item number dropped), a sentence longer than
``MAX_CLAIM_WORDS`` words cut into pieces of that length. Work is bounded whatever the text:
the first ``MAX_CHARS`` characters are read and the first ``MAX_CLAIMS`` claims kept; a piece
with no letter or digit is not a claim.

``claim_coverage(answer, references)`` aligns every claim of the gold answers with the answer,
two ways:

- ``sim``: the highest cosine between the claim's sentence vector and the vectors of the answer's
  claims (the bundled embedder all-MiniLM-L6-v2, through :class:`~evalsuite.judge._features.Similarity`
  with ``CLAIM_BUCKETS``: fixed-shape batches, so a vector does not depend on its batch; rounded to 3
  decimals);
- ``lex``: IDF-weighted recall of the claim's content words in the whole answer (a word also
  counting by its first five letters or the same number written otherwise, as the learned
  judge's soft recall), the IDF taken over the gold claims of the item, so a word every gold
  claim repeats (the topic) weighs less than the word that makes a claim its own.

A claim's ``score`` is the mean of the two, and it is ``covered`` when the score reaches
``COVERED_AT``. The same alignment, read the other way (the answer's claims against the gold
claims, or retrieved passages), measures support; see :mod:`evalsuite.judge._claim_features`.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from evalsuite.judge._features import (
    EMBED_MAX_TOKENS,
    SIM_DECIMALS,
    STOP_WORDS,
    Similarity,
    _numbers,
    _soft_in,
    _stems,
    _tokens,
)

MAX_CHARS = 6000  # characters read per text
MAX_CLAIMS = 24  # claims kept per text (and over all gold answers of an item)
MAX_CLAIM_WORDS = 40  # a longer sentence is cut into pieces of this many words
COVERED_AT = 0.5  # a gold claim with score >= this is covered
SCORE_DECIMALS = 4
# word pieces a claim is padded to: finer than the short-answer judge's buckets, as claims run 10-60 pieces
CLAIM_BUCKETS = (8, 16, 24, 32, 40, 48, EMBED_MAX_TOKENS)

_BREAK = re.compile(
    r"\s*[\r\n\u2028\u2029]+\s*"  # a line break
    r"|(?<=[.!?。！？])[\"'”’)\]]*\s+"  # end of sentence, then space
    r"|\s+[•‣◦]\s+"  # an inline bullet
)
_BULLET = re.compile(r"^(?:[-*•‣◦·]+|\(?\d{1,3}[.)])(?:\s+|$)")
_ABBREVIATION = re.compile(r"(?:\b(?:e\.g|i\.e|etc|vs|dr|mr|mrs|ms|prof|fig|approx|al)\.|\b[a-z]\.)$", re.IGNORECASE)
_NEGATION = re.compile(r"\b(?:not|no|never|none|neither|nor|cannot|without|nothing|nobody)\b|n['’]t\b", re.IGNORECASE)


def _clean(text: str) -> str:
    text = text[:MAX_CHARS] if isinstance(text, str) else ""
    text = unicodedata.normalize("NFC", text)
    # control and format characters (other than line breaks) read as spaces; lone surrogates dropped
    return "".join(
        ch
        if ch in "\n\r\u2028\u2029" or not unicodedata.category(ch).startswith("C")
        else ("" if unicodedata.category(ch) == "Cs" else " ")
        for ch in text
    )


def _has_word(piece: str) -> bool:
    return any(ch.isalnum() for ch in piece)


def split_claims(text: str) -> tuple[str, ...]:
    """The claims of ``text`` in order (see the module doc); ``()`` for a text with no words."""
    text = _clean(text)
    claims: list[str] = []
    pending = ""
    for piece in _BREAK.split(text):
        if piece is None:
            continue
        piece = _BULLET.sub("", " ".join(piece.split()))
        if not piece:
            continue
        pending = f"{pending} {piece}" if pending else piece
        if _ABBREVIATION.search(pending) and len(pending.split()) < MAX_CLAIM_WORDS:
            continue  # "e.g." or an initial does not end a sentence
        claims.extend(_cut(pending))
        pending = ""
        if len(claims) >= MAX_CLAIMS:
            break
    if pending:
        claims.extend(_cut(pending))
    return tuple(c for c in claims if _has_word(c))[:MAX_CLAIMS]


def _cut(sentence: str) -> list[str]:
    words = sentence.split()
    return [" ".join(words[i : i + MAX_CLAIM_WORDS]) for i in range(0, len(words), MAX_CLAIM_WORDS)]


def gold_claims(references: Sequence[str]) -> tuple[str, ...]:
    """The claims of every gold answer, in order, each once, at most ``MAX_CLAIMS`` in all."""
    out: list[str] = []
    for reference in references:
        for claim in split_claims(reference):
            if claim not in out:
                out.append(claim)
                if len(out) == MAX_CLAIMS:
                    return tuple(out)
    return tuple(out)


def content_words(claim: str) -> tuple[str, ...]:
    words = _tokens(claim)
    return tuple(w for w in words if w not in STOP_WORDS) or words


def idf_weights(claims: Sequence[Sequence[str]]) -> dict[str, float]:
    """log(1 + N / df) per word over ``claims`` (each a word sequence): N claims, df claims holding the word."""
    df: dict[str, int] = {}
    for words in claims:
        for w in set(words):
            df[w] = df.get(w, 0) + 1
    n = len(claims)
    return {w: math.log1p(n / d) for w, d in df.items()}


class Bag:
    """A text's words for soft matching: the words, their five-letter stems, the numbers they write."""

    def __init__(self, words: Sequence[str]) -> None:
        self.words = set(words)
        self.stems = _stems(self.words)
        self.numbers = _numbers(self.words)

    def has(self, word: str) -> bool:
        return _soft_in(word, self.words, self.stems, self.numbers)


def weighted_recall(words: Sequence[str], bag: Bag, idf: dict[str, float], default: float) -> float:
    """IDF-weighted share of ``words`` in ``bag`` (a word outside ``idf`` weighs ``default``)."""
    total = found = 0.0
    for w in dict.fromkeys(words):
        weight = idf.get(w, default)
        total += weight
        if bag.has(w):
            found += weight
    return found / total if total else 0.0


def cosines(similarity: Similarity, left: Sequence[str], right: Sequence[str]) -> np.ndarray:
    """len(left) x len(right) cosines of the claims' sentence vectors, rounded to ``SIM_DECIMALS``."""
    if not left or not right:
        return np.zeros((len(left), len(right)))
    vectors = similarity.vectors(list(left) + list(right))
    a = np.vstack([vectors[t] for t in left]).astype(np.float64)
    b = np.vstack([vectors[t] for t in right]).astype(np.float64)
    # the shapes are the item's own (its claims), never a batch's: the same item gives the same product
    return np.round(a @ b.T, SIM_DECIMALS)


def negated(claim: str) -> bool:
    return bool(_NEGATION.search(claim))


@dataclass(frozen=True)
class ClaimMatch:
    """One gold claim and how well the answer covers it (``score`` in [0, 1])."""

    text: str
    covered: bool
    score: float


@dataclass(frozen=True)
class ClaimCoverage:
    """The gold answers' claims, in order, each with its match in the answer."""

    claims: tuple[ClaimMatch, ...]

    @property
    def share(self) -> float:
        """Share of the gold claims covered (0 when the gold answers have no claim)."""
        return sum(c.covered for c in self.claims) / len(self.claims) if self.claims else 0.0

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(c.text for c in self.claims if not c.covered)


@dataclass(frozen=True)
class Alignment:
    """Per gold claim its best cosine and IDF-weighted recall in the answer; per answer claim the same in the gold."""

    gold: tuple[str, ...]
    answer: tuple[str, ...]
    gold_sim: tuple[float, ...]
    gold_lex: tuple[float, ...]
    answer_sim: tuple[float, ...]
    answer_lex: tuple[float, ...]
    matrix: np.ndarray  # gold x answer cosines


def align(answer: str, references: Sequence[str], similarity: Similarity) -> Alignment:
    """Both directions of claim alignment between ``answer`` and its gold answers (see the module doc)."""
    gold = gold_claims(references)
    claims = split_claims(answer)
    matrix = cosines(similarity, gold, claims)
    gold_words = [content_words(c) for c in gold]
    answer_words = [content_words(c) for c in claims]
    idf = idf_weights(gold_words)
    default = math.log1p(len(gold_words) or 1)  # a word no gold claim holds weighs as a word of one claim
    answer_bag = Bag([w for words in answer_words for w in words])
    gold_bag = Bag([w for words in gold_words for w in words])
    gold_lex = tuple(round(weighted_recall(w, answer_bag, idf, default), SCORE_DECIMALS) for w in gold_words)
    answer_lex = tuple(round(weighted_recall(w, gold_bag, idf, default), SCORE_DECIMALS) for w in answer_words)
    gold_sim = tuple(float(max(row)) if len(row) else 0.0 for row in matrix)
    answer_sim = tuple(float(max(col)) if len(col) else 0.0 for col in matrix.T) if gold else (0.0,) * len(claims)
    return Alignment(gold, claims, gold_sim, gold_lex, answer_sim, answer_lex, matrix)


_DEFAULT: list[Similarity] = []


def default_similarity() -> Similarity:
    if not _DEFAULT:
        _DEFAULT.append(Similarity(buckets=CLAIM_BUCKETS))
    return _DEFAULT[0]


def coverage_from(alignment: Alignment, covered_at: float = COVERED_AT) -> ClaimCoverage:
    matches = []
    for text, sim, lex in zip(alignment.gold, alignment.gold_sim, alignment.gold_lex):
        score = round(min(1.0, max(0.0, (max(sim, 0.0) + lex) / 2)), SCORE_DECIMALS)
        matches.append(ClaimMatch(text, score >= covered_at, score))
    return ClaimCoverage(tuple(matches))


def claim_coverage(answer: str, references: Sequence[str], *, similarity: Similarity | None = None) -> ClaimCoverage:
    """Which claims of the gold answers ``references`` the ``answer`` covers (see the module doc).

    Deterministic: the same text gives the same scores whatever else is scored with it.
    ``similarity``: the sentence-vector source (default: one shared, in-memory)."""
    if isinstance(references, str):
        references = (references,)
    return coverage_from(align(answer, tuple(references), similarity or default_similarity()))
