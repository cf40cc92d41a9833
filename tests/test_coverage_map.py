"""The coverage map under each of the report's largest drops: which gold claims the fine-tuned answer
lost against the baseline's, in summary.md and report.html, escaped, and the report rendering even
when the coverage cannot be computed. Items are written by hand here."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from evalsuite.judge import ClaimCoverage, ClaimMatch, split_claims
from evalsuite.report import render
from evalsuite.report._coverage import CoverageMap, coverage_map, with_coverage
from evalsuite.report._examples import largest_drops
from evalsuite.report._render import blocks, to_html, to_markdown
from evalsuite.storage import atomic_write_json

JUDGE = "token-overlap"
BRIDGE_GOLD = "The bridge opened in 2011. It spans the river Tay."
BRIDGE_BASELINE = "The bridge opened in 2011 and spans the Tay river."
BRIDGE_CELL = "It opened in 2011."


def _item(qid, question, gold, answer, score):
    return {
        "id": qid,
        "question": question,
        "references": [gold],
        "passages": [f"passage of {qid}"],
        "passage_ids": [f"p-{qid}"],
        "answer": answer,
        "metrics": {},
        "verdicts": {JUDGE: {"accuracy": score, "completeness": score, "raw": ["f1=0.5"]}},
    }


def _cell(cid, kind, rows, score):
    items = [_item(qid, question, gold, answer, score) for qid, question, gold, answer in rows]
    return {
        "id": cid,
        "dataset": "facts",
        "model": "base" if kind == "baseline" else "tuned",
        "spec": "s",
        "model_spec": "s",
        "size": 0 if kind == "baseline" else 10,
        "kind": kind,
        "baseline_id": "facts-base-ft0",
        "status": "passed" if kind == "baseline" else "failed",
        "items": items,
        "judges": [JUDGE],
        "summary": {
            "judges": {JUDGE: {c: {"mean": score, "std": 0.0, "n": len(items)} for c in ("accuracy", "completeness")}}
        },
    }


def results_of(items):
    """``items``: (id, question, gold, baseline answer, cell answer); the cell scores 1 where the baseline scores 5."""
    base = _cell("facts-base-ft0", "baseline", [(i, q, g, b) for i, q, g, b, _ in items], 5.0)
    cell = _cell("facts-tuned-ft10", "finetuned", [(i, q, g, c) for i, q, g, _, c in items], 1.0)
    return {
        "run_id": "r",
        "profile": "p",
        "config": {"datasets": ["facts"], "models": [], "margin": 0.5},
        "judges": [],
        "cells": [base, cell],
        "provenance": {},
    }


BRIDGE = ("bridge", "When did the bridge open, and what does it span?", BRIDGE_GOLD, BRIDGE_BASELINE, BRIDGE_CELL)
CAPITAL = ("capital", "What is the capital of France?", "Paris", "Paris", "London")


def test_a_claim_the_fine_tuned_answer_dropped_is_marked_lost_in_markdown_and_html(tmp_path):
    atomic_write_json(tmp_path / "results.json", results_of([BRIDGE, CAPITAL]))
    render(tmp_path)
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    page = (tmp_path / "report.html").read_text(encoding="utf-8")

    assert re.search(r"<summary>When did the bridge open.*\(drop 4\.00; lost 1 of 2 gold claims\)</summary>", summary)
    assert "  - kept: The bridge opened in 2011. (" in summary
    assert "  - lost: It spans the river Tay. (" in summary
    lost_line = next(line for line in summary.splitlines() if line.startswith("  - lost: It spans"))
    baseline, cell = map(float, re.search(r"\((\d\.\d\d) / (\d\.\d\d)\)$", lost_line).groups())
    assert baseline > cell  # the baseline's answer covers the claim better than the fine-tuned one
    # a one-claim gold answer still gets its map
    assert "(drop 4.00; lost 1 of 1 gold claim)" in summary and "  - lost: Paris (" in summary

    assert "<b>drop 4.00</b>, lost 1 of 2 gold claims</summary>" in page
    assert "<li class='claim lost'><span class='mark'>lost</span> It spans the river Tay. " in page
    assert "<li class='claim kept'><span class='mark'>kept</span> The bridge opened in 2011. " in page
    assert "<li class='claim lost'><span class='mark'>lost</span> Paris " in page
    assert "class='legend'" in page and "li.claim.lost{" in page
    for state in ("lost", "kept", "gained", "missed"):
        assert f"<li class='claim {state}'><span class='mark'>{state}</span> covered by" in page  # the legend


def _coverage(*covered_scores):
    return ClaimCoverage(
        tuple(ClaimMatch(f"claim {i}.", covered, score) for i, (covered, score) in enumerate(covered_scores))
    )


def test_each_gold_claim_is_lost_kept_gained_or_missed():
    answers = {
        "base": _coverage((True, 0.9), (True, 0.8), (False, 0.2), (False, 0.1)),
        "cell": _coverage((False, 0.3), (True, 0.7), (True, 0.6), (False, 0.0)),
    }
    cmap = coverage_map("base", "cell", ["gold"], coverage=lambda answer, refs: answers[answer])
    assert [(c.text, c.state, c.baseline_score, c.cell_score) for c in cmap.claims] == [
        ("claim 0.", "lost", 0.9, 0.3),
        ("claim 1.", "kept", 0.8, 0.7),
        ("claim 2.", "gained", 0.2, 0.6),
        ("claim 3.", "missed", 0.1, 0.0),
    ]
    assert cmap.lost == 1 and cmap.headline() == "lost 1 of 4 gold claims"
    assert CoverageMap().headline() == "no gold claim to map"
    assert CoverageMap(unavailable="x").headline() == "coverage map unavailable"


def test_the_map_comes_from_results_json_alone_and_is_the_same_each_time():
    results = results_of([BRIDGE, CAPITAL])
    first = with_coverage(largest_drops(results))
    again = with_coverage(list(reversed(largest_drops(results))))
    maps = {ex["id"]: ex["coverage"] for group in first for ex in group["examples"]}
    assert maps == {ex["id"]: ex["coverage"] for group in again for ex in group["examples"]}
    assert [c.text for c in maps["bridge"].claims] == list(split_claims(BRIDGE_GOLD))


class _Tags(HTMLParser):
    """Start tags, attributes, and whether every opened element is closed in order."""

    VOID = {"meta", "br", "img", "input", "hr", "link"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.stack, self.balanced = [], [], [], True
        self.claims = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [name for name, _ in attrs]
        if tag == "li" and (dict(attrs).get("class") or "").startswith("claim "):
            self.claims += 1
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.balanced = False


INJECTION = "<script>alert('x')</script><img src=x onerror=alert(1)>| a | b |\n```\n<!-- ]]>"
TEXT = st.text(max_size=300) | st.sampled_from(
    [
        INJECTION,
        "\x00\x07\x1b[31m red. \u202eevil\u2066.",
        "🧪👍🏽. e\u0301\u0301!",
        "",
        " \n\t",
        "a\ud800b lone surrogate. Second claim.",
        "- one\n- two\n1. three",
        "x" * 200_000 + ". tail claim.",
    ]
)


def _page_parts(results):
    out = blocks(results)
    return to_markdown(out), to_html(out, "t")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gold=TEXT, baseline=TEXT, cell=TEXT)
@example(gold=INJECTION + ". The bridge opened in 2011.", baseline=INJECTION, cell="x" * 200_000)
@example(gold="The bridge opened.\x00 It spans <b>the Tay</b>.", baseline="\x1b[2J spans the Tay", cell="")
def test_any_answer_and_gold_text_give_an_escaped_well_formed_map(gold, baseline, cell):
    summary, page = _page_parts(results_of([("q", "Which?", gold, baseline, cell)]))
    plain_summary, plain_page = _page_parts(results_of([("q", "Which?", "plain", "plain", "other")]))
    n = len(split_claims(gold))

    tags, plain = _Tags(), _Tags()
    tags.feed(page)
    tags.close()
    plain.feed(plain_page)
    plain.close()
    assert tags.balanced and not tags.stack
    assert "onerror" not in tags.attrs and tags.tags.count("script") == plain.tags.count("script") == 1
    assert tags.claims == n + 4  # the legend's four marks and one per gold claim
    assert set(tags.tags) <= set(plain.tags)  # the text adds no kind of element
    for tag in ("img", "script", "select", "table", "details", "a", "iframe"):
        assert tags.tags.count(tag) == plain.tags.count(tag)

    assert "<script" not in summary.lower() and "<img" not in summary.lower()
    claim_lines = [line for line in summary.splitlines() if line.startswith("  - ")]
    assert len(claim_lines) == n
    assert all(re.match(r"  - (lost|kept|gained|missed): .* \(\d\.\d\d / \d\.\d\d\)$", line) for line in claim_lines)
    assert all(ch.isprintable() or ch == " " for line in claim_lines for ch in line)
    headline = "no gold claim to map" if n == 0 else f"of {n} gold claim"
    assert headline in summary and headline in page


def test_the_report_renders_when_the_coverage_raises(tmp_path, monkeypatch):
    import evalsuite.report._coverage as coverage_module

    calls = []

    def broken(answer, references):
        calls.append(answer)
        raise OSError("embedder all-MiniLM-L6-v2 could not load: <no such file>\nrun `make setup`")

    monkeypatch.setattr(coverage_module, "claim_coverage", broken)
    atomic_write_json(tmp_path / "results.json", results_of([BRIDGE, CAPITAL]))
    render(tmp_path)
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert len(calls) == 1  # the first failure stands for every drop of the report
    reason = "OSError: embedder all-MiniLM-L6-v2 could not load: &lt;no such file&gt; run `make setup`"
    assert summary.count(f"- **Gold claims:** coverage map unavailable ({reason})") == 2
    assert page.count(f"<b>Gold claims:</b> coverage map unavailable ({reason})") == 2
    assert "(drop 4.00; coverage map unavailable)</summary>" in summary
    assert "| baseline answer | fine-tuned answer |" in summary and "<details class='ex'>" in page
    assert "<no such file>" not in page and "<no such file>" not in summary
