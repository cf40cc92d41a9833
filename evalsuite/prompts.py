"""The RAG prompt: one template, used identically for fine-tuning examples and for evaluation."""

from __future__ import annotations

from typing import Sequence

from .records import Chunk, Message, Prompt

SYSTEM = (
    "You are a careful assistant that answers questions using the numbered passages provided. "
    "Answer briefly and only with information supported by the passages. "
    "If the passages do not contain the answer, say that it cannot be answered from them."
)


def format_passages(chunks: Sequence[Chunk]) -> str:
    lines = []
    for i, chunk in enumerate(chunks, start=1):
        head = f"[{i}] ({chunk.title}) " if chunk.title else f"[{i}] "
        lines.append(head + " ".join(chunk.text.split()))
    return "\n".join(lines)


def rag_prompt(question: str, chunks: Sequence[Chunk]) -> Prompt:
    """System turn + one user turn with the numbered retrieved passages and the question."""
    user = f"Passages:\n{format_passages(chunks)}\n\nQuestion: {question.strip()}\nAnswer:"
    return Prompt(
        messages=(Message("system", SYSTEM), Message("user", user)),
        passage_ids=tuple(c.id for c in chunks),
    )
