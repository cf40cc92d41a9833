"""Split passages into overlapping token windows that keep their provenance.

Tokens are maximal runs of non-space characters. A chunk is ``size`` tokens starting
every ``size - overlap`` tokens; its text is the exact slice ``passage.text[start:end]``,
so every chunk can be traced back to its passage and character offsets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from ..errors import ConfigError
from ..records import Chunk, Passage

_TOKEN = re.compile(r"\S+")


@dataclass(frozen=True)
class ChunkerSettings:
    size: int = 64  # tokens per chunk
    overlap: int = 16  # tokens shared by consecutive chunks

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ConfigError(f"chunk size must be at least 1 token, got {self.size}")
        if not 0 <= self.overlap < self.size:
            raise ConfigError(f"chunk overlap must be in [0, size), got {self.overlap} with size {self.size}")


def chunk_passage(passage: Passage, settings: ChunkerSettings = ChunkerSettings()) -> list[Chunk]:
    spans = [m.span() for m in _TOKEN.finditer(passage.text)]
    chunks: list[Chunk] = []
    step = settings.size - settings.overlap
    for first in range(0, max(len(spans), 1), step):
        window = spans[first : first + settings.size]
        if not window:
            break
        start, end = window[0][0], window[-1][1]
        chunks.append(
            Chunk(
                f"{passage.id}#{start}", passage.id, passage.doc_id, passage.title, start, end, passage.text[start:end]
            )
        )
        if first + settings.size >= len(spans):
            break
    return chunks


def chunk_corpus(passages: Iterable[Passage], settings: ChunkerSettings = ChunkerSettings()) -> list[Chunk]:
    return [chunk for p in passages for chunk in chunk_passage(p, settings)]
