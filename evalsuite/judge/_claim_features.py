"""Claim features of a long answer against its gold answers (and retrieved passages), for ``learned-claims``.

Built on the claim alignment of :mod:`evalsuite.judge._claims` (every value in [0, 1] unless said):

Completeness, the gold answers' claims covered by the answer:

- ``cov_sim``: mean over the gold claims of the best cosine with an answer claim;
- ``cov_lex``: mean over the gold claims of their IDF-weighted word recall in the answer;
- ``cov_share``: share of the gold claims covered (``ClaimMatch.covered``);
- ``cov_top``: mean of the better half of the gold claims' scores (an answer covering the main
  claims well, not every aside).

Accuracy, the answer's claims supported by the gold answers or the item's passages:

- ``sup_sim`` / ``sup_lex``: mean over the answer's claims of the best cosine with a gold (or
  passage) claim / the IDF-weighted share of the claim's words found there;
- ``sup_share``: share of the answer's claims supported (mean of the two >= ``COVERED_AT``);
- ``contradict``: share of the answer's claims aligned with a gold claim (cosine >=
  ``ALIGNED_AT``) that clash with it: both name numbers and none in common, or one is negated
  and the other not;
- ``sim_q``: mean over the answer's claims of their cosine with the question;
- ``log_claims``: log(1 + answer claims); ``hedge``: the answer declines or hedges.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from evalsuite.judge._claims import (
    COVERED_AT,
    SCORE_DECIMALS,
    align,
    coverage_from,
    negated,
    split_claims,
)
from evalsuite.judge._features import _HEDGE, Similarity, _numbers, _tokens

CLAIM_FEATURES = (
    "cov_sim",
    "cov_lex",
    "cov_share",
    "cov_top",
    "sup_sim",
    "sup_lex",
    "sup_share",
    "contradict",
    "sim_q",
    "log_claims",
    "hedge",
)
ALIGNED_AT = 0.6  # cosine at which an answer claim speaks of the same thing as a gold claim


def _mean(values) -> float:
    values = list(values)
    return math.fsum(values) / len(values) if values else 0.0


def _clash(answer_claim: str, gold_claim: str) -> bool:
    a, g = _numbers(_tokens(answer_claim)), _numbers(_tokens(gold_claim))
    if a and g and not (a & g):
        return True
    return negated(answer_claim) != negated(gold_claim)


def claim_features(
    question: str, references: Sequence[str], context: Sequence[str], answer: str, similarity: Similarity
) -> dict[str, float]:
    """The claim features of one answer (see the module doc)."""
    gold = align(answer, references, similarity)
    coverage = coverage_from(gold)
    scores = sorted((c.score for c in coverage.claims), reverse=True)
    out = dict.fromkeys(CLAIM_FEATURES, 0.0)
    out["cov_sim"] = _mean(max(s, 0.0) for s in gold.gold_sim)
    out["cov_lex"] = _mean(gold.gold_lex)
    out["cov_share"] = coverage.share
    out["cov_top"] = _mean(scores[: max(1, (len(scores) + 1) // 2)]) if scores else 0.0
    support_sim, support_lex = list(gold.answer_sim), list(gold.answer_lex)
    if context:  # a claim is supported by the gold answers or by a retrieved passage
        passages = align(answer, context, similarity)
        support_sim = [max(a, b) for a, b in zip(support_sim, passages.answer_sim)]
        support_lex = [max(a, b) for a, b in zip(support_lex, passages.answer_lex)]
    n = len(gold.answer)
    if n:
        out["sup_sim"] = _mean(max(s, 0.0) for s in support_sim)
        out["sup_lex"] = _mean(support_lex)
        out["sup_share"] = sum((max(s, 0.0) + x) / 2 >= COVERED_AT for s, x in zip(support_sim, support_lex)) / n
        if gold.gold:
            clashes = 0
            for j, claim in enumerate(gold.answer):
                i = int(np.argmax(gold.matrix[:, j]))
                if gold.matrix[i, j] >= ALIGNED_AT and _clash(claim, gold.gold[i]):
                    clashes += 1
            out["contradict"] = clashes / n
        q_text = " ".join(question.split()) or "(empty)"
        vectors = similarity.vectors([*gold.answer, q_text])
        q = vectors[q_text].astype(np.float64)
        out["sim_q"] = _mean(max(0.0, float(vectors[c].astype(np.float64) @ q)) for c in gold.answer)
    out["log_claims"] = math.log1p(n)
    out["hedge"] = float(bool(_HEDGE.search(answer[:2000])))
    return {k: round(float(v), SCORE_DECIMALS) for k, v in out.items()}


def claim_matrix(
    rows: Sequence[tuple[str, Sequence[str], Sequence[str], str]], similarity: Similarity, progress: bool = False
) -> np.ndarray:
    """One row of ``CLAIM_FEATURES`` per (question, references, context, answer).

    Every sentence is embedded first, in one pass (fixed-shape batches), then each row is read."""
    texts = []
    for question, references, context, answer in rows:
        claims = split_claims(answer)
        texts.extend(claims)
        texts.append(" ".join(question.split()) or "(empty)")
        for ref in (*references, *context):
            texts.extend(split_claims(ref))
    similarity.vectors(list(dict.fromkeys(texts)), progress=progress)
    out = [
        [f[name] for name in CLAIM_FEATURES]
        for f in (claim_features(q, refs, ctx, a, similarity) for q, refs, ctx, a in rows)
    ]
    return np.asarray(out, dtype=float).reshape(len(rows), len(CLAIM_FEATURES))
