"""Qualification on graded long answers (judge_longform/liveqa_med.jsonl) and the per-dataset gating rule.

The graded file is read from the data root; a corrupted copy is made at run time in tmp_path.
Rule tests use records written for the test."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from evalsuite.errors import DataError
from evalsuite.judge import (
    FIT_SPLIT,
    QUALIFY_SPLIT,
    RULE,
    Judge,
    LongFormSet,
    Qualification,
    gating_criteria,
    gating_decision,
    load_graded,
    load_human,
    long_answers,
    make_judge,
    measure_graded,
    median_gold_words,
    select_graded,
)
from evalsuite.judge._graded import graded_path
from evalsuite.judge._qualify import measure
from evalsuite.judge.cli import add_cli
from evalsuite.records import Example


class Recording(Judge):
    """The reference judge, remembering which items it was asked to score."""

    def __init__(self):
        super().__init__()
        self.inner = make_judge("token-overlap")
        self.name, self.config, self.steps_version = self.inner.name, self.inner.config, self.inner.steps_version
        self.seen: list[str] = []

    def judge(self, items, progress=False):
        self.seen += [item.id for item in items]
        return self.inner.judge(items, progress=progress)


NO_LONGFORM = LongFormSet((), (), 0, "none")


@pytest.fixture(scope="module")
def graded():
    return load_graded()


@pytest.fixture(scope="module")
def corrupted(tmp_path_factory, graded):
    """A copy of the file whose fit rows have every grade (and answer) changed."""
    path = tmp_path_factory.mktemp("graded") / "liveqa_med.jsonl"
    lines = []
    for line in graded_path().read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["split"] == FIT_SPLIT:
            row["label"] = 5 - row["label"]
            row["labels"] = [5 - g for g in row["labels"]]
            row["correct"], row["complete"] = int(row["label"] >= 3), int(row["label"] == 4)
            row["answer"] = row["answer"][::-1]
        lines.append(json.dumps(row))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_graded(path)


def _figures(agreement):
    return [dataclasses.astuple(c) for c in agreement.criteria]


# --------------------------------------------------------------------------- split discipline


def test_the_qualification_scores_only_qualify_rows_and_fit_grades_do_not_move_it(graded, corrupted):
    human = load_human()
    first, second = Recording(), Recording()
    q = measure(first, human, NO_LONGFORM, graded=graded)
    q_corrupt = measure(second, human, NO_LONGFORM, graded=corrupted)
    qualify_ids = {x.id for x in graded.items if x.split == QUALIFY_SPLIT}
    fit_ids = {x.id for x in graded.items if x.split == FIT_SPLIT}
    graded_seen = set(first.seen) - {item.id for item in human.items}
    assert graded_seen == qualify_ids and not graded_seen & fit_ids
    assert q.graded.split == QUALIFY_SPLIT and q.graded.answers == len(qualify_ids) == 1493
    assert q.graded.questions == 52 and q.graded.correct == 182 and q.graded.excellent == 66
    assert _figures(q.graded) == _figures(q_corrupt.graded) and q.graded.ids_digest == q_corrupt.graded.ids_digest
    # the fit split is measured only when asked, and the corruption shows there
    fit, fit_corrupt = (
        measure_graded(first, split=FIT_SPLIT, graded=graded),
        measure_graded(first, split=FIT_SPLIT, graded=corrupted),
    )
    assert fit.answers == 1492 and _figures(fit) != _figures(fit_corrupt)


def test_a_limit_takes_questions_of_the_qualify_split_in_a_fixed_order(graded):
    rows = graded.split(QUALIFY_SPLIT)
    chosen = select_graded(rows, 100)
    assert len(chosen) == 100 and chosen == select_graded(rows, 100)
    assert {x.split for x in chosen} == {QUALIFY_SPLIT}
    per_question = {}
    for x in chosen:
        per_question[x.question_id] = per_question.get(x.question_id, 0) + 1
    whole = [q for q, n in per_question.items() if n == sum(r.question_id == q for r in rows)]
    assert len(whole) >= len(per_question) - 1  # whole questions, the last one cut to fill the limit
    assert len(select_graded(rows, 60)) == 60 and set(select_graded(rows, 60)) <= set(select_graded(rows, 100))


# --------------------------------------------------------------------------- figures


def test_figures_have_question_bootstrap_intervals_and_are_deterministic(graded):
    judge = make_judge("token-overlap")
    a, b = measure_graded(judge, graded=graded), measure_graded(judge, graded=graded)
    assert a == b
    for c in a.criteria:
        assert c.auc_low <= c.auc <= c.auc_high and c.spearman_low <= c.spearman <= c.spearman_high
        assert 0.01 < c.auc_high - c.auc_low < 0.4
    acc, comp = a.criterion("accuracy"), a.criterion("completeness")
    assert acc.auc_answers == 1493 and acc.auc_positives == 182
    assert comp.auc_answers == 182 and comp.auc_positives == 66 and comp.auc_questions == 43
    assert round(acc.auc, 3) == 0.683 and round(comp.auc, 3) == 0.714 and round(acc.spearman, 3) == 0.249
    other = measure_graded(judge, graded=graded, seed=1)
    assert other.criterion("accuracy").auc == acc.auc and other.criterion("accuracy").auc_low != acc.auc_low


def test_the_qualification_json_keeps_the_graded_figures(graded):
    q = measure(make_judge("token-overlap"), load_human(), NO_LONGFORM, graded=graded, limit=200)
    data = json.loads(json.dumps(q.as_json()))
    assert data["graded"]["split"] == "qualify" and data["graded"]["answers"] == 200 and data["graded"]["subset"]
    assert {c["criterion"] for c in data["graded"]["criteria"]} == {"accuracy", "completeness"}
    assert Qualification.from_json(data).graded == q.graded or math.isnan(q.graded.criteria[0].auc)
    old = {k: v for k, v in data.items() if k != "graded"}  # stored before graded answers existed
    assert Qualification.from_json(old).graded is None


# --------------------------------------------------------------------------- the rule, per dataset


def _example(i, *answers):
    return Example(f"q{i}", "test", "a question?", tuple(answers), "short")


def test_a_dataset_is_long_when_its_median_gold_answer_has_five_words_or_more():
    short = [_example(0, "one two three four"), _example(1, "a b"), _example(2, "a b c d e f")]
    long = [_example(0, "one two three four five"), _example(1, "a b c d e"), _example(2, "x")]
    assert median_gold_words(short) == 4 and not long_answers(short)
    assert median_gold_words(long) == 5 and long_answers(long)
    assert not long_answers([]) and math.isnan(median_gold_words([]))


@pytest.fixture(scope="module")
def qualified(graded):
    """A qualification of the reference judge made to pass the short-answer rule, for the rule tests."""
    q = measure(make_judge("token-overlap"), load_human(), NO_LONGFORM, graded=graded, limit=300)
    return dataclasses.replace(
        q,
        qualified=True,
        gating_criteria=("accuracy", "completeness"),
        reasons=("qualifies to gate: (written for the test)",),
    )


def _with_aucs(q, accuracy, completeness):
    crit = {"accuracy": accuracy, "completeness": completeness}
    new = tuple(dataclasses.replace(c, auc=crit[c.criterion]) for c in q.graded.criteria)
    return dataclasses.replace(q, graded=dataclasses.replace(q.graded, criteria=new))


@pytest.mark.parametrize(
    "accuracy, completeness, gates",
    [
        (0.80, 0.70, ("accuracy", "completeness")),  # at the bars
        (0.7999, 0.70, ("completeness",)),
        (0.85, 0.6999, ("accuracy",)),
        (0.60, 0.50, ()),
    ],
)
def test_long_answer_datasets_gate_only_criteria_that_meet_the_long_answer_bars(
    qualified, accuracy, completeness, gates
):
    q = _with_aucs(qualified, accuracy, completeness)
    assert gating_criteria(q, long_answers=False) == ("accuracy", "completeness")  # short answers: the old rule
    assert gating_criteria(q, long_answers=True) == gates
    decision = gating_decision(q, long_answers=True)
    for name in ("accuracy", "completeness"):
        bar = RULE.graded_bar(name)
        assert (f"{bar:.2f}" in decision.reason(name)) and (("below" in decision.reason(name)) == (name not in gates))


def test_no_graded_figures_or_no_qualification_means_no_long_answer_gating(qualified):
    unmeasured = dataclasses.replace(qualified, graded=None)
    assert gating_criteria(unmeasured, long_answers=False) == ("accuracy", "completeness")
    assert gating_criteria(unmeasured, long_answers=True) == ()
    assert "not measured" in gating_decision(unmeasured, long_answers=True).reason("accuracy")
    nan = _with_aucs(qualified, float("nan"), float("nan"))
    assert gating_criteria(nan, long_answers=True) == ()
    unqualified = dataclasses.replace(
        _with_aucs(qualified, 0.95, 0.95),
        qualified=False,
        gating_criteria=(),
        reasons=("does not qualify, so it reports but never gates: (test)",),
    )
    for long in (False, True):
        decision = gating_decision(unqualified, long_answers=long)
        assert decision.criteria == () and "does not qualify" in decision.reason("completeness")


def test_the_rule_states_the_long_answer_bars():
    text = RULE.text()
    assert "0.80 (accuracy" in text and "0.70 (completeness" in text and "median of 5+ words" in text


# --------------------------------------------------------------------------- the file


def _row(**over):
    row = {
        "id": "a1",
        "question_id": "Q1",
        "question": "what is it?",
        "consumer_question": "",
        "references": ["it is x"],
        "answer": "x",
        "label": 3,
        "labels": [3],
        "correct": 1,
        "complete": 0,
        "split": "qualify",
        "source": "test",
    }
    return json.dumps({**row, **over})


@pytest.mark.parametrize(
    "lines, match",
    [
        ([_row(label=5)], "line 1: field 'label': expected a grade 1-4"),
        ([_row(correct=0)], "field 'correct'"),
        ([_row(split="train")], "field 'split'"),
        ([_row(), _row(id="a2", split="fit")], "both 'qualify' and 'fit'"),
        ([_row(), _row()], "'a1' repeats"),
        ([_row(question="", consumer_question="")], "field 'question'"),
        ([_row(references=[" "])], "field 'references'"),
    ],
)
def test_a_bad_line_names_the_file_line_and_field(tmp_path, lines, match):
    path = tmp_path / "graded.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=match):
        load_graded(path)


def test_a_missing_paraphrase_falls_back_to_the_consumer_question(tmp_path):
    path = tmp_path / "graded.jsonl"
    path.write_text(_row(question="", consumer_question="my own words?") + "\n", encoding="utf-8")
    assert load_graded(path).items[0].question == "my own words?"


# --------------------------------------------------------------------------- the command line


def _run(argv):
    parser = argparse.ArgumentParser(prog="evalsuite")
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_qualify_prints_the_graded_table_and_the_verdict_per_dataset_length(capsys):
    assert _run(["judge", "--judge", "token-overlap", "--qualify", "--limit", "120", "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "graded long answers: liveqa_med.jsonl" in out and "qualify split: 120 answers" in out
    assert "a SUBSET of 1493" in out and "bootstrap resamples of the questions" in out
    assert "short gold answers (median under 5 words)" in out and "long gold answers (median 5+ words" in out


@pytest.fixture
def geval_server():
    """A loopback OpenAI-compatible server: each G-Eval call gets a score distribution derived from its prompt."""
    calls = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
            calls.append(body)
            text = json.dumps(body["messages"])
            top = str(1 + int(hashlib.sha256(text.encode()).hexdigest(), 16) % 5)
            other = "5" if top != "5" else "1"
            payload = json.dumps(
                {
                    "id": "x",
                    "object": "chat.completion",
                    "created": 0,
                    "model": "m",
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": top},
                            "logprobs": {
                                "content": [
                                    {
                                        "token": top,
                                        "logprob": -0.2,
                                        "bytes": None,
                                        "top_logprobs": [
                                            {"token": top, "logprob": -0.2, "bytes": None},
                                            {"token": other, "logprob": -1.8, "bytes": None},
                                        ],
                                    }
                                ]
                            },
                        }
                    ],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
                }
            ).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", calls
    httpd.shutdown()
    httpd.server_close()


def test_a_served_g_eval_judge_is_measured_on_graded_long_answers_with_a_limit(
    geval_server, tmp_path, monkeypatch, capsys
):
    url, calls = geval_server
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "cache"))
    spec = f"openai:{url}#m"
    assert _run(["judge", "--judge", spec, "--qualify", "--limit", "12", "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    graded_part = plan["parts"][-1]
    assert "graded long answers" in graded_part["model"] and "12 answers" in graded_part["token_method"]
    assert graded_part["calls"] == 24 and graded_part["prompt_tokens"] > 0 and not calls  # priced, nothing sent
    assert _run(["judge", "--judge", spec, "--qualify", "--limit", "12", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    g = data["graded"]
    assert g["answers"] == 12 and g["subset"] and g["split"] == "qualify"
    sent = [json.dumps(c["messages"]) for c in calls]
    assert len(calls) == plan["total"]["calls"]
    chosen = select_graded(load_graded().split(QUALIFY_SPLIT), 12)
    assert all(
        any(x.answer[:60] in s.replace("\\n", "\n") or json.dumps(x.answer[:60])[1:-1] in s for s in sent)
        for x in chosen
    )
    assert {c["criterion"] for c in g["criteria"]} == {"accuracy", "completeness"}


def test_a_dataset_context_says_whether_its_gold_answers_are_long():
    from evalsuite.matrix._pipeline import DatasetContext

    def ctx(median):
        return DatasetContext(None, 0, (), (), (), "", "", 0.0, median_gold_words=median)

    assert ctx(5.0).long_answers and ctx(19.0).long_answers
    assert not ctx(4.5).long_answers and not ctx(float("nan")).long_answers


@pytest.mark.parametrize("accuracy, long_gating", [(0.85, ["accuracy", "completeness"]), (0.75, ["completeness"])])
def test_the_matrix_gates_each_dataset_with_the_judges_its_answer_length_allows(
    tmp_path, qualified, accuracy, long_gating
):
    """nq (2-word gold answers) gates under the short-answer rule; bioasq (a median of 19 words) needs the
    long-answer bars."""
    from evalsuite.matrix import MatrixSession, build_config
    from evalsuite.records import stable_hash

    cfg = build_config(
        "synthetic",
        {
            "models": [{"spec": "bundled:m-1", "name": "m"}],
            "datasets": ["nq", "bioasq"],
            "sizes": [0],
            "judges": ["token-overlap"],
            "eval_limit": 20,
        },
    )
    session = MatrixSession(cfg, report_root=tmp_path / "reports", token="tok")
    judge = session.judges()[0]
    q = _with_aucs(qualified, accuracy, 0.75).as_json()
    path = session.run_dir / "judges" / f"{stable_hash(judge.config)}.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"name": judge.name, "spec": "token-overlap", "config": {}, "qualification": q}))
    assert not session.long_answers("nq") and session.long_answers("bioasq")
    assert session.gating("nq") == {judge.name: ["accuracy", "completeness"]}
    assert session.gating("bioasq") == {judge.name: long_gating}
