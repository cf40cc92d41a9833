"""The gate's verdict end to end, through the installed plugin, with the default qualified judge.

A team's project outside this repository gates candidates against the bundled model's baseline
with ``learned-correctness`` (the judge that qualifies against people):

- a broken candidate, served by a loopback OpenAI-compatible server that answers every
  question with a refusal or with the baseline's answer to another question, exits 1; the
  JUnit file names the failed cell and the report shows its largest drops;
- the base model as its own candidate never fails (its answers are the baseline's);
- a team suite with a failing unit test beside passing cells exits nonzero (6), and an
  inconclusive cell blocks (4) unless ``--allow-inconclusive``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from evalsuite.matrix import INCONCLUSIVE, PASSED, REGRESSION, TEST_FAILED

pytestmark = pytest.mark.slow

MATRIX = """
[default]
models = [{ spec = "bundled:smollm2-135m-instruct", name = "smollm2" }]
datasets = ["bioasq"]
sizes = [0]
eval_limit = 20
max_new_tokens = 40
judges = ["learned-correctness"]
margin = 0.5
corpus_subset = 100
"""
REFUSAL = "I'm sorry, I cannot answer that question."


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=dict(os.environ), capture_output=True, text=True, timeout=1800)


def evalsuite_run(project: Path, *args: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "evalsuite", "run", *args], project)


def tail(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout[-4000:] + proc.stderr[-3000:]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A team's project whose baseline has run once (the later runs reuse its answers and verdicts)."""
    root = tmp_path_factory.mktemp("team") / "project"
    (root / "gate").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[tool.evalsuite]\nmatrix = "gate/matrix.toml"\n')
    (root / "gate" / "matrix.toml").write_text(MATRIX)
    first = evalsuite_run(root, "-k", "ft0")
    assert first.returncode == PASSED, tail(first)
    return root


def latest(project: Path) -> dict:
    return json.loads((project / "reports" / "latest" / "results.json").read_text(encoding="utf-8"))


class ChatServer:
    """A loopback OpenAI-compatible chat server: ``answer(model, user_text)`` writes each reply.
    ``tables`` maps a served model name to {question: answer}; a prompt names its question."""

    def __init__(self, tables: dict[str, dict[str, str]]):
        self.tables = tables
        self.unmatched = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                text = "\n".join(str(m.get("content")) for m in body.get("messages", []) if m.get("role") == "user")
                table = server.tables[body["model"]]
                found = [q for q in table if q in text]
                if not found:
                    server.unmatched += 1
                answer = table[max(found, key=len)] if found else REFUSAL
                payload = json.dumps(
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": answer}}
                        ],
                        "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def broken_answers(items: list[dict]) -> dict[str, str]:
    """A refusal for every other question, the baseline's answer to the next question for the rest."""
    answers = [item["answer"] for item in items]
    return {item["question"]: (REFUSAL if i % 2 else answers[(i + 1) % len(answers)]) for i, item in enumerate(items)}


def test_a_broken_served_candidate_exits_1_and_the_report_shows_its_drops(project):
    base = next(c for c in latest(project)["cells"] if c["id"] == "bioasq-smollm2-ft0")
    server = ChatServer({"broken": broken_answers(base["items"])})
    try:
        junit = project / "reports" / "junit-broken.xml"
        gate = evalsuite_run(project, "--candidate", f"openai:{server.url}#broken", "--junitxml", str(junit))
    finally:
        server.close()
    assert server.unmatched == 0  # every prompt carried one of the eval questions
    assert gate.returncode == REGRESSION, tail(gate)
    status = json.loads((project / "reports" / "last-run.json").read_text(encoding="utf-8"))
    assert status["exit_status"] == REGRESSION and status["cells"]["bioasq-candidate"] == "failed"
    cells = {c["id"]: c for c in latest(project)["cells"]}
    candidate = cells["bioasq-candidate"]
    assert candidate["status"] == "failed"
    s = candidate["gate"]["judges"]["learned-correctness"]["accuracy"]
    assert s["gating"] and s["outcome"] == "fail" and s["ci_high"] < -0.5 and s["n"] == 20
    cases = {case.get("name"): case for case in ET.parse(junit).getroot().iter("testcase")}
    failure = cases["bioasq-candidate"].find("failure")
    assert failure is not None and "bioasq-candidate accuracy [learned-correctness]" in failure.get("message", "") + (
        failure.text or ""
    )
    props = {p.get("name"): p.get("value") for p in cases["bioasq-candidate"].iter("property")}
    assert props.get("evalsuite_status") == "failed"
    assert cases["bioasq-smollm2-ft0"].find("failure") is None
    summary = (project / "reports" / "latest" / "summary.md").read_text(encoding="utf-8")
    assert "largest drops" in summary and "### bioasq-candidate" in summary
    assert REFUSAL in summary  # the candidate's answers are shown beside the baseline's


def test_the_base_model_as_its_own_candidate_never_fails(project):
    gate = evalsuite_run(project, "--candidate", "bundled:smollm2-135m-instruct")
    assert gate.returncode == PASSED, tail(gate)
    candidate = next(c for c in latest(project)["cells"] if c["id"] == "bioasq-candidate")
    assert candidate["status"] == "passed"
    for criterion, s in candidate["gate"]["judges"]["learned-correctness"].items():
        assert s["diff"] == 0.0 and s["outcome"] == "pass", criterion


def test_a_failing_unit_test_beside_passing_cells_exits_nonzero(project):
    suite = project / "tests"
    suite.mkdir(exist_ok=True)
    (suite / "test_matrix.py").write_text("from evalsuite.pytest_plugin import test_cell  # noqa: F401\n")
    (suite / "test_units.py").write_text(
        "def test_ok():\n    assert 1 + 1 == 2\n\n\ndef test_broken():\n    assert 'fine-tune' == 'baseline'\n"
    )
    proc = run(
        [sys.executable, "-m", "pytest", "tests", "-p", "no:cacheprovider", "-k", "ft0 or test_ok or test_broken"],
        project,
    )
    assert proc.returncode == TEST_FAILED, tail(proc)
    assert "1 failed" in proc.stdout and "bioasq-smollm2-ft0" in proc.stdout
    cells = {c["id"]: c["status"] for c in latest(project)["cells"]}
    assert cells["bioasq-smollm2-ft0"] == "passed"
    ok = run([sys.executable, "-m", "pytest", "tests", "-p", "no:cacheprovider", "-k", "ft0 or test_ok"], project)
    assert ok.returncode == PASSED, tail(ok)


# a team's own dataset, written for this test: a question, its gold answer, a passage that holds it
FACTS = [
    (
        "What colour is a clear daytime sky?",
        "blue",
        "On a clear day the sky looks blue because air scatters blue light.",
    ),
    ("How many legs does a spider have?", "eight", "Spiders are arachnids and have eight legs."),
    (
        "Which gas do plants take in for photosynthesis?",
        "carbon dioxide",
        "Plants take in carbon dioxide for photosynthesis.",
    ),
    ("What is frozen water called?", "ice", "Water freezes into ice at zero degrees Celsius."),
    ("Which planet is known as the red planet?", "Mars", "Mars is called the red planet because of iron oxide dust."),
    ("How many days are in a leap year?", "366", "A leap year has 366 days instead of 365."),
    ("What do bees make from nectar?", "honey", "Bees turn flower nectar into honey."),
    ("Which organ pumps blood through the body?", "the heart", "The heart pumps blood through the body."),
    (
        "What is the boiling point of water at sea level in Celsius?",
        "100 degrees",
        "At sea level water boils at 100 degrees Celsius.",
    ),
    ("Which metal is liquid at room temperature?", "mercury", "Mercury is a metal that is liquid at room temperature."),
]
WRONG = {0: "green", 1: "six"}  # what a worse model answers to the first two questions


def own_project(root: Path, url: str, base_model: str) -> Path:
    (root / "data").mkdir(parents=True)
    with open(root / "data" / "facts.jsonl", "w", encoding="utf-8") as fh:
        for i, (q, a, passage) in enumerate(FACTS):
            fh.write(
                json.dumps(
                    {
                        "id": f"f{i}",
                        "question": q,
                        "answers": [a],
                        "passages": [{"id": f"p{i}", "text": passage, "doc_id": f"d{i}"}],
                    }
                )
                + "\n"
            )
    (root / "matrix.toml").write_text(f"""
[default]
models = [{{ spec = "openai:{url}#{base_model}", name = "served" }}]
datasets = [{{ name = "facts", path = "data/facts.jsonl" }}]
sizes = [0]
eval_limit = 10
judges = ["learned-correctness"]
margin = 0.5
""")
    return root


def test_an_inconclusive_cell_blocks_unless_allowed_and_an_improvement_is_no_regression(tmp_path, project):
    server = ChatServer(
        {"gold": {q: a for q, a, _ in FACTS}, "worse": {q: WRONG.get(i, a) for i, (q, a, _) in enumerate(FACTS)}}
    )
    try:
        # the candidate gets two of ten questions wrong: a drop the ten questions cannot confirm or rule out
        team = own_project(tmp_path / "worse", server.url, "gold")
        blocked = evalsuite_run(team, "--candidate", f"openai:{server.url}#worse")
        status = json.loads((team / "reports" / "last-run.json").read_text(encoding="utf-8"))
        allowed = evalsuite_run(team, "--candidate", f"openai:{server.url}#worse", "--allow-inconclusive")
        # the baseline gets them wrong and the candidate right: an improvement, never a regression
        better = own_project(tmp_path / "better", server.url, "worse")
        improved = evalsuite_run(better, "--candidate", f"openai:{server.url}#gold")
    finally:
        server.close()
    assert blocked.returncode == INCONCLUSIVE, tail(blocked)
    candidate = next(c for c in latest(team)["cells"] if c["id"] == "facts-candidate")
    s = candidate["gate"]["judges"]["learned-correctness"]["accuracy"]
    assert candidate["status"] == "inconclusive" and s["outcome"] == "inconclusive", s
    assert s["ci_low"] < -0.5 <= s["ci_high"] and s["n"] == 10 and s["needed_n"] > 10
    assert "INCONCLUSIVE" in blocked.stdout and f"about {s['needed_n']} questions would decide it" in blocked.stdout
    assert status["exit_status"] == INCONCLUSIVE and status["cells"]["facts-candidate"] == "inconclusive"
    assert allowed.returncode == PASSED, tail(allowed)
    assert improved.returncode == PASSED, tail(improved)
    up = next(c for c in latest(better)["cells"] if c["id"] == "facts-candidate")
    assert up["status"] == "passed" and up["gate"]["judges"]["learned-correctness"]["accuracy"]["diff"] > 0
