"""report.html in a real headless browser (Chromium from Debian's packages), at desktop and phone width.

The browser is driven through its DevTools protocol over a pipe (``--remote-debugging-pipe``: file
descriptors 3 and 4, JSON messages ended by NUL), so no package that downloads a browser is needed.
At 390 px the page is shown as a phone would (``mobile`` emulation, which honours the viewport tag).
Checked: the verdict strip comes before every table and figure, and every table either fits the
viewport or sits in a scrolling container that does; the report is built from a results.json written
here, with cells of all four outcomes (items written for the test).
"""

import fcntl
import json
import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from evalsuite.matrix import MatrixSession, RunStore, build_config, expand_cells
from evalsuite.matrix._gate import compare
from evalsuite.report import render

CHROMIUM = "/usr/bin/chromium"
INSTALL = "apt-get update && apt-get install -y chromium"
N = 20
HOSTILE = "<img src=x onerror=\"document.title='executed'\"><script>document.title='executed'</script>"

MEASURE = """(() => {
  const vw = document.documentElement.clientWidth;
  const top = el => el.getBoundingClientRect().top + window.scrollY;
  const strip = document.getElementById('verdict');
  const tables = [...document.querySelectorAll('table')].map(t => {
    let a = t.parentElement, scroller = null;
    while (a && a !== document.documentElement) {
      const ox = getComputedStyle(a).overflowX;
      if (ox === 'auto' || ox === 'scroll') { scroller = a; break; }
      a = a.parentElement;
    }
    const r = t.getBoundingClientRect();
    return {top: top(t), width: r.width, visible: r.height > 0,
            scroller: scroller ? scroller.clientWidth : null};
  });
  const images = [...document.querySelectorAll('img')].map(i => ({top: top(i), width:
  i.getBoundingClientRect().width}));
  return JSON.stringify({viewport: vw, title: document.title, verdict: strip ? top(strip) : null,
                         badges: strip ? [...strip.querySelectorAll('.badge')].map(b => b.innerText) : [],
                         page: document.documentElement.scrollWidth, tables, images});
})()"""


class DevTools:
    """One Chromium over --remote-debugging-pipe."""

    def __init__(self, profile: Path):
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # The browser reads commands on fd 3 and writes replies on fd 4: the child's ends are first moved
        # above 10, so that placing them on 3 and 4 cannot overwrite one another.
        high_r, high_w = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10), fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        to_chrome_r, from_chrome_w = high_r, high_w

        def fds():
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            pass_fds=(3, 4),
            preexec_fn=fds,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []

    def _read(self) -> dict:
        while b"\0" not in self._buf:
            chunk = os.read(self._from_chrome, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed its DevTools pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, session: str) -> None:
        for i, ev in enumerate(self.events):
            if ev.get("method") == method and ev.get("sessionId") == session:
                del self.events[i]
                return
        while True:
            ev = self._read()
            if ev.get("method") == method and ev.get("sessionId") == session:
                return
            self.events.append(ev)

    def layout(self, url: str, width: int, height: int) -> dict:
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=width < 600,
        )
        self.call("Page.enable", session)
        self.call("Page.navigate", session, url=url)
        self.wait_event("Page.loadEventFired", session)
        value = self.call("Runtime.evaluate", session, expression=MEASURE, returnByValue=True)["result"]["value"]
        self.call("Target.closeTarget", targetId=target)
        return json.loads(value)

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, OSError):
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


def _score(model: str, size: int, i: int) -> float:
    base = 1.0 + (i % 5) * 0.8
    if model == "worse":  # loses more the more it is tuned
        return max(1.0, base - 0.04 * size - 0.05 * (i % 3))
    return base + (0.1 if (i + size) % 2 else -0.1) * (size > 0)


def _cell(cell) -> dict:
    items = []
    for i in range(N):
        s = _score(cell.model, cell.size, i)
        answer = HOSTILE if i == 0 else f"answer {i} " + "with a long unbroken word " * 3 + "x" * 120
        items.append(
            {
                "id": f"{cell.dataset}-q{i}",
                "question": f"question {i} written for this test?",
                "references": ["gold"],
                "passage_ids": [f"p{i}"],
                "answer": answer,
                "prompt_tokens": 100,
                "completion_tokens": 10,
                "verdicts": {
                    "token-overlap": {
                        "accuracy": s,
                        "completeness": min(5.0, s + 0.5),
                        "runs": 1,
                        "unscored": 0,
                        "raw": ["f1=0.5 " + "y" * 200],
                    }
                },
                "metrics": {"exact_match": float(i % 2), "f1": 0.5, "rouge_l": 0.4, "yes_no_correct": None},
            }
        )

    def ms(v):
        m = sum(v) / len(v)
        return {"mean": m, "std": math.sqrt(sum((x - m) ** 2 for x in v) / len(v)), "n": len(v), "unscored": 0}

    scores = {c: [it["verdicts"]["token-overlap"][c] for it in items] for c in ("accuracy", "completeness")}
    return {
        "id": cell.id,
        "dataset": cell.dataset,
        "model": cell.model,
        "spec": cell.spec,
        "size": cell.size,
        "kind": cell.kind,
        "baseline_id": cell.baseline_id,
        "status": "scored",
        "judges": ["token-overlap"],
        "items": items,
        "summary": {
            "judges": {"token-overlap": {c: ms(v) for c, v in scores.items()}},
            "metrics": {"f1": ms([0.5] * N)},
        },
        "timings": {"cell": 1.0},
        "tokens": {"prompt": 100 * N, "completion": 10 * N},
    }


@pytest.fixture
def report(tmp_path) -> Path:
    cfg = build_config(
        "browser",
        {
            "models": [{"spec": "bundled:worse-1", "name": "worse"}, {"spec": "bundled:steady-1", "name": "steady"}],
            "datasets": ["nq", "bioasq"],
            "sizes": [0, 10, 20, 40],
            "judges": ["token-overlap"],
            "eval_limit": N,
        },
    )
    session = MatrixSession(cfg, report_root=tmp_path / "reports", token="tok")
    store = RunStore(session.run_dir)
    cells = {c.id: _cell(c) for c in expand_cells(cfg)}
    for c in expand_cells(cfg):
        data = cells[c.id]
        if c.kind == "baseline":
            data["status"] = "passed"
        else:
            data["gate"] = compare(
                data, cells[c.baseline_id], judges=["token-overlap"], gating=["token-overlap"], margin=0.25
            )
            data["status"] = data["gate"]["outcome"]
        store.write(c.id, data)
    session.finalize({})
    results_path = session.run_dir / "results.json"
    results = json.loads(results_path.read_text())
    for cell in results["cells"]:
        if cell["id"] == "bioasq-steady-ft40":
            cell["status"] = "ungated"
            cell["reason"] = "not gated: too few scored answers (3 of 20)"
            cell["gate"]["outcome"] = "ungated"
    results_path.write_text(json.dumps(results))
    render(session.run_dir)
    statuses = {c["status"] for c in json.loads(results_path.read_text())["cells"] if c["kind"] != "baseline"}
    assert statuses >= {"passed", "failed", "inconclusive", "ungated"}, statuses
    return session.run_dir / "report.html"


def test_report_opens_with_the_verdict_and_fits_desktop_and_phone_width(report, tmp_path):
    if not Path(CHROMIUM).exists():
        if os.environ.get("EVALSUITE_SKIP_BROWSER") == "1":
            pytest.skip("EVALSUITE_SKIP_BROWSER=1 and no Chromium")
        pytest.fail(f"{CHROMIUM} is missing: install it with `{INSTALL}` (or set EVALSUITE_SKIP_BROWSER=1 to skip)")
    html = report.read_text()
    assert "<meta name='viewport' content='width=device-width, initial-scale=1'>" in html
    assert HOSTILE not in html  # escaped
    copy = tmp_path / "page" / "report.html"
    copy.parent.mkdir()
    shutil.copy(report, copy)
    profile = Path(tempfile.mkdtemp(prefix="chromium-", dir=tmp_path))
    browser = DevTools(profile)
    try:
        for width, height in ((1280, 900), (390, 844)):
            page = browser.layout(copy.as_uri(), width, height)
            where = f"at {width} px"
            assert page["viewport"] <= width, (where, page["viewport"])
            assert page["title"] != "executed", where  # the model's markup did not run
            assert page["verdict"] is not None and len(page["badges"]) == 16, (where, page["badges"])
            labels = " ".join(page["badges"])  # each outcome in words, not colour alone
            for word in ("pass", "FAIL", "INCONCLUSIVE", "not gated", "valid baseline", "headroom"):
                assert word in labels, (where, word)
            assert page["tables"] and page["images"], where
            for t in page["tables"]:
                assert page["verdict"] < t["top"], (where, "a table above the verdict", t)
                if t["visible"] and t["width"] > page["viewport"] + 0.5:
                    assert t["scroller"] is not None and t["scroller"] <= page["viewport"], (where, t)
            for img in page["images"]:
                assert page["verdict"] < img["top"] and img["width"] <= page["viewport"] + 0.5, (where, img)
            assert page["page"] <= page["viewport"] + 1, (where, "the page scrolls sideways", page["page"])
    finally:
        browser.close()
