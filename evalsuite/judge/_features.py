"""Features of an answer against its question and gold answers, for the learned judge.

Lexical (no model), each the best over the gold answers, each gold answer also read without
its parenthesized part ("Pilgrims (Plymouth Colony)" -> "Pilgrims") and URL escapes:

- ``contains``: a gold answer appears in the answer as a run of words (after SQuAD normalization);
- ``recall``: share of a gold answer's words found in the answer;
- ``soft_recall``: the same over the gold answer's content words (no stop words), a word also
  counting when the answer has a word with the same first five letters ("Bryophytes" for
  "Bryophyta") or the same number written otherwise ("ten" for "10");
- ``precision``: share of the answer's words found in a gold answer;
- ``new_precision``: share of the answer's content words that are not in the question (what the
  answer adds) found in a gold answer, same matching as soft recall; the plain content-word
  precision when the answer adds nothing;
- ``numbers_match`` / ``numbers_clash``: every number of a gold answer is in the answer / the
  answer names numbers (beyond the question's) and none of the gold's;
- ``hedge``: the answer declines or hedges ("I don't know", "not sure", "cannot", ...);
- ``log_words``: log(1 + answer words); ``new_share``: share of the answer's words that are
  content words not in the question.

Similarity (the bundled sentence embedder, all-MiniLM-L6-v2, in fp32 on the CPU, in batches of
one fixed shape so a vector depends neither on its batch nor on the thread count; rounded to 3
decimals):

- ``sim_qref``: cosine of the answer with "question + gold answer" (best over the first gold answers);
- ``sim_q``: cosine of the answer with the question alone (an answer that only restates the
  question is close to it, but not closer to question + gold).
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
import urllib.parse
from functools import lru_cache
from typing import Iterator, Sequence

import numpy as np

from evalsuite.metrics import normalize_answer
from evalsuite.retrieval import DEFAULT_EMBEDDER, Embedder

LEXICAL = (
    "contains",
    "recall",
    "soft_recall",
    "precision",
    "new_precision",
    "numbers_match",
    "numbers_clash",
    "hedge",
    "log_words",
    "new_share",
)
SIMILARITY = ("sim_qref", "sim_q")
FEATURES = LEXICAL + SIMILARITY
SIM_REFERENCES = 3  # gold answers compared by similarity (the first ones; NQ lists 1-3, TriviaQA many aliases)
SIM_DECIMALS = 3
EMBED_MAX_TOKENS = 64  # word pieces read per text: the answer's claim comes first

STOP_WORDS = frozenset(
    """
a an the of in on at to for by with from and or but nor is are was were be been being am it its this that these
those as which who whom whose what when where why how do does did done has have had having not no i you he she they
we his her their our your my me him them us there here than then so such also can could would should will may might
must shall into about over under after before during while if one ones s
""".split()
)
_NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty".split()
    )
}
_NUMBER_WORDS.update(
    {
        "thirty": 30,
        "forty": 40,
        "fifty": 50,
        "sixty": 60,
        "seventy": 70,
        "eighty": 80,
        "ninety": 90,
        "hundred": 100,
        "thousand": 1000,
        "million": 10**6,
        "billion": 10**9,
        "first": 1,
        "second": 2,
        "third": 3,
        "fourth": 4,
        "fifth": 5,
        "sixth": 6,
        "seventh": 7,
        "eighth": 8,
        "ninth": 9,
        "tenth": 10,
        "dozen": 12,
    }
)
_HEDGE = re.compile(
    r"\b(i'?m sorry|i am sorry|sorry, i|i (?:do not|don't|cannot|can't|could not|couldn't) "
    r"(?:know|find|say|determine|answer|provide)"
    r"|not sure|unsure|unclear|no (?:information|answer|record|way to know)|unknown|as an ai|i am not able"
    r"|(?:is|are) not (?:known|specified|mentioned|clear|available|possible to)|there is no "
    r"(?:single|definitive|way))\b",
    re.IGNORECASE,
)
_PARENS = re.compile(r"\s*\([^)]*\)")
STEM = 5  # letters two words must share to count as the same word in soft matching


def _tokens(text: str) -> tuple[str, ...]:
    return tuple(normalize_answer(text).split())


@lru_cache(maxsize=65536)
def _reference_forms(reference: str) -> tuple[tuple[str, ...], ...]:
    """The gold answer's word sequences: as written, unescaped, and without parenthesized parts."""
    forms = []
    unescaped = urllib.parse.unquote(reference) if "%" in reference else reference
    for text in (reference, unescaped, _PARENS.sub("", unescaped)):
        words = _tokens(text)
        if words and words not in forms:
            forms.append(words)
    return tuple(forms)


MAX_NUMBER_DIGITS = 18  # a longer run of digits in an answer is a string of digits, not a number to compare


def _number(word: str) -> int | None:
    """The number a word writes (digits of any script, or a number word), else None.

    ``str.isdecimal`` and not ``isdigit``: superscripts and other digit signs ("2011⁶", "²") are
    digits to ``isdigit`` but not numbers ``int`` can read, and a model's answer may hold them."""
    if word.isdecimal():
        return int(word) if len(word) <= MAX_NUMBER_DIGITS else None
    return _NUMBER_WORDS.get(word)


def _numbers(words) -> set[int]:
    return {n for n in map(_number, words) if n is not None}


def _stems(words) -> set[str]:
    return {w[:STEM] for w in words if len(w) >= STEM}


def _soft_in(word: str, words: set[str], stems: set[str], numbers: set[int]) -> bool:
    if word in words:
        return True
    if len(word) >= STEM and word[:STEM] in stems:
        return True
    number = _number(word)
    return number is not None and number in numbers


def _contains(answer: tuple[str, ...], reference: tuple[str, ...]) -> bool:
    n = len(reference)
    first = reference[0]
    return any(answer[i] == first and answer[i : i + n] == reference for i in range(len(answer) - n + 1))


def lexical_features(question: str, references: Sequence[str], answer: str) -> dict[str, float]:
    """The lexical features of one answer (see the module doc)."""
    words = _tokens(answer)
    question_words = set(_tokens(question))
    word_set = set(words)
    word_stems = _stems(words)
    word_numbers = _numbers(words)
    content = [w for w in words if w not in STOP_WORDS]
    added = [w for w in content if w not in question_words]
    out = dict.fromkeys(LEXICAL, 0.0)
    gold_numbers: set[int] = set()
    for reference in references:
        for ref in _reference_forms(reference):
            ref_set = set(ref)
            ref_content = [w for w in ref if w not in STOP_WORDS] or list(ref)
            ref_numbers = _numbers(ref)
            gold_numbers |= ref_numbers
            ref_stems = _stems(ref)
            if words:
                out["contains"] = max(out["contains"], float(_contains(words, ref)))
                out["precision"] = max(out["precision"], sum(w in ref_set for w in words) / len(words))
                pool = added or content
                if pool:
                    share = sum(_soft_in(w, ref_set, ref_stems, ref_numbers) for w in pool) / len(pool)
                    out["new_precision"] = max(out["new_precision"], share)
            out["recall"] = max(out["recall"], sum(w in word_set for w in ref) / len(ref))
            soft = sum(_soft_in(w, word_set, word_stems, word_numbers) for w in ref_content) / len(ref_content)
            out["soft_recall"] = max(out["soft_recall"], soft)
            if ref_numbers and ref_numbers <= word_numbers:
                out["numbers_match"] = 1.0
    answer_numbers = word_numbers - _numbers(question_words)
    out["numbers_clash"] = float(bool(gold_numbers) and bool(answer_numbers) and not (answer_numbers & gold_numbers))
    out["hedge"] = float(bool(_HEDGE.search(answer)))
    out["log_words"] = math.log1p(len(words))
    out["new_share"] = len(added) / len(words) if words else 0.0
    return out


# --------------------------------------------------------------------------- similarity

LENGTH_BUCKETS = (8, 16, 32, EMBED_MAX_TOKENS)  # word pieces a text is padded to
_TORCH_THREADS = threading.Lock()


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread inside the block (the vectors are the same on any count; see Similarity).

    One thread is the faster choice for a model this small wherever the cores are shared
    (pytest-xdist workers, CI runners): measured on 2 busy cores, 72 answers/s on one thread
    against 16 on two, whose threads wait for each other.
    """
    import torch

    with _TORCH_THREADS:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)


BATCH = 16  # texts per forward pass, filled with empty texts
STORE_EVERY = 1024  # texts embedded between writes to the vector store


def reference_texts(question: str, references: Sequence[str]) -> list[str]:
    """The texts "question + gold answer" compared with the answer (first ``SIM_REFERENCES`` gold answers)."""
    texts = []
    for reference in references:
        clean = " ".join(_PARENS.sub("", urllib.parse.unquote(reference)).split()) or reference.strip()
        text = f"{' '.join(question.split())} {clean}"
        if text not in texts:
            texts.append(text)
        if len(texts) == SIM_REFERENCES:
            break
    return texts


class Similarity:
    """Cosine similarities from the bundled sentence embedder (fp32, on the CPU).

    Every text is embedded in a batch of one shape: ``BATCH`` texts padded to the smallest
    of ``LENGTH_BUCKETS`` that holds it (empty texts fill the last batch). A text's vector then
    depends neither on the texts it was embedded with nor on the thread count (the tests check
    this bit for bit), so a serial run and a pytest-xdist run agree. It runs on one torch
    thread (``one_torch_thread``), the faster choice on shared cores.
    """

    def __init__(self, embedder: str | None = None, store=None, buckets: Sequence[int] = LENGTH_BUCKETS) -> None:
        if not buckets or list(buckets) != sorted(set(buckets)) or buckets[-1] != EMBED_MAX_TOKENS or buckets[0] < 2:
            raise ValueError(f"buckets {buckets!r}: increasing lengths ending at {EMBED_MAX_TOKENS}")
        self.buckets = tuple(buckets)
        self.embedder_name = embedder
        self.store = store  # optional persistent store: get_many / put_many by (identity, text)
        self._vectors: dict[str, np.ndarray] = {}
        self._embedder = None

    @property
    def embedder(self):
        if self._embedder is None:
            self._embedder = Embedder(
                self.embedder_name or DEFAULT_EMBEDDER, device="cpu", precision="fp32", max_seq_length=EMBED_MAX_TOKENS
            )
        return self._embedder

    @property
    def identity(self) -> str:
        return f"{self.embedder.identity}|buckets{'-'.join(map(str, self.buckets))}x{BATCH}"

    def _encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        import torch

        model = self.embedder.model
        tokenizer = model.tokenizer
        lengths = [
            len(ids) for ids in tokenizer(list(texts), truncation=True, max_length=EMBED_MAX_TOKENS)["input_ids"]
        ]
        groups: dict[int, list[int]] = {}
        for i, n in enumerate(lengths):
            groups.setdefault(next(b for b in self.buckets if n <= b), []).append(i)
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        out = np.zeros((len(texts), dimension()), dtype=np.float32)
        batches = [
            (bucket, idx[s : s + BATCH]) for bucket, idx in sorted(groups.items()) for s in range(0, len(idx), BATCH)
        ]
        bar = None
        if progress and len(batches) > 1:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(texts), desc="embed", unit="text")
        try:
            with one_torch_thread():
                for bucket, idx in batches:
                    chunk = [texts[i] for i in idx] + [""] * (BATCH - len(idx))
                    features = tokenizer(
                        chunk, padding="max_length", truncation=True, max_length=bucket, return_tensors="pt"
                    )
                    with torch.inference_mode():
                        vectors = model(dict(features))["sentence_embedding"].float().numpy()
                    out[idx] = vectors[: len(idx)]
                    if bar is not None:
                        bar.update(len(idx))
        finally:
            if bar is not None:
                bar.close()
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)

    def vectors(self, texts: Sequence[str], progress: bool = False) -> dict[str, np.ndarray]:
        missing = sorted({t for t in texts if t not in self._vectors})
        if missing and self.store is not None:
            self._vectors.update(self.store.get_many(self.identity, missing))
            missing = [t for t in missing if t not in self._vectors]
        bar = None
        if progress and len(missing) > STORE_EVERY:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(missing), desc="embed", unit="text")
        try:
            for start in range(0, len(missing), STORE_EVERY):  # stored as it goes: an interrupted run resumes
                chunk = missing[start : start + STORE_EVERY]
                fresh = dict(zip(chunk, self._encode(chunk, progress=progress and bar is None)))
                self._vectors.update(fresh)
                if self.store is not None:
                    self.store.put_many(self.identity, fresh)
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
        return {t: self._vectors[t] for t in texts}

    def features(self, rows: Sequence[tuple[str, Sequence[str], str]], progress: bool = False) -> np.ndarray:
        """(sim_qref, sim_q) per (question, references, answer) row, rounded to ``SIM_DECIMALS``."""
        plans = [
            (" ".join(a.split()) or "(empty)", " ".join(q.split()), reference_texts(q, refs)) for q, refs, a in rows
        ]
        texts = [t for answer, question, refs in plans for t in (answer, question, *refs)]
        vectors = self.vectors(texts, progress=progress)
        out = np.zeros((len(rows), len(SIMILARITY)))
        for i, (answer, question, refs) in enumerate(plans):
            a = vectors[answer].astype(np.float64)
            out[i, 0] = max(float(a @ vectors[r].astype(np.float64)) for r in refs)
            out[i, 1] = float(a @ vectors[question].astype(np.float64))
        return np.round(out, SIM_DECIMALS)


def feature_matrix(
    rows: Sequence[tuple[str, Sequence[str], str]], similarity: Similarity, progress: bool = False
) -> np.ndarray:
    """One row of ``FEATURES`` per (question, references, answer)."""
    lexical = np.asarray(
        [[f[name] for name in LEXICAL] for f in (lexical_features(q, refs, a) for q, refs, a in rows)], dtype=float
    ).reshape(len(rows), len(LEXICAL))
    return np.hstack([np.round(lexical, 6), similarity.features(rows, progress=progress)])
