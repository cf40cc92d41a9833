"""How good is the gate? Its error rates on real answers of the default profile.

    python -m benchmarks.gate_power --json
    python -m benchmarks.gate_power --profile default --samples 3 --draws 50

The answers are the bundled model's on the profile's eval questions (``[default]``: 40 per
dataset), judged by the profile's gating judge (``learned-correctness``), and the decision is
the gate's own (:func:`evalsuite.metrics.paired_stats` and its pass / fail / inconclusive
outcome at the profile's margin). Three measurements:

- **A/A** (nothing changed): the same model against itself. Greedy answers would be identical, so
  the model answers every question ``--samples`` times with seeded sampling (temperature
  ``--temperature``); every pair of those answer sets is one "cell against its baseline" whose
  true difference is zero. Each pair is gated on ``--resamples`` bootstrap resamples of the
  questions (the same questions in both arms), so the rates are those of runs on other question
  sets of the same size. Reported: how often the gate says fail (a false alarm) and inconclusive.
- **Injected regressions**: the profile's real baseline answers, with a known share (5, 10, 20,
  40%) of its correct answers (accuracy score >= 3) replaced by wrong ones, alternately the
  answer to another question of the dataset and a refusal, judged again by the same judge and
  gated against the untouched baseline, ``--draws`` random draws per share. Reported: the
  detection rate (fail) and the inconclusive rate, per dataset and share.
- **Power**: the paired standard deviation of the A/A differences, the minimum detectable drop
  at the profile's n with 80% power (:func:`evalsuite.metrics.minimum_detectable_drop`) and the
  eval questions a margin needs (:func:`evalsuite.metrics.questions_for_margin`).

Answers and verdicts go through the library's caches (``$EVALSUITE_CACHE``), so a second run
takes seconds. The measured paired spreads are written to
``evalsuite/judge/measured/gate_power.json`` with ``--record``; the dry run reads them to say
how many eval questions a margin needs.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from evalsuite.judge import CRITERIA, JudgeItem, make_judge
from evalsuite.matrix import MatrixSession, load_config
from evalsuite.metrics import minimum_detectable_drop, paired_stats, questions_for_margin
from evalsuite.models import GenerationSettings, load_model

ROOT = Path(__file__).resolve().parent.parent
MATRIX = ROOT / "test_cases" / "matrix.toml"
SHARES = (0.05, 0.10, 0.20, 0.40)
MARGINS = (0.25, 0.5, 0.75, 1.0)
REFUSAL = "I don't know."
CORRECT = 3.0  # an answer whose accuracy score is at least this counts as correct
RECORD = ROOT / "evalsuite" / "judge" / "measured" / "gate_power.json"


def _cache_root() -> Path:
    return Path(os.environ.get("EVALSUITE_CACHE") or Path.home() / ".cache" / "evalsuite").expanduser()


def _wilson(k: int, n: int) -> tuple[float, float]:
    """95% Wilson interval of a rate k/n."""
    if n == 0:
        return float("nan"), float("nan")
    z, p = 1.959964, k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _rate(k: int, n: int) -> dict:
    low, high = _wilson(k, n)
    return {"rate": round(k / n, 4) if n else None, "k": k, "n": n, "ci95": [round(low, 4), round(high, 4)]}


def _gate(baseline: np.ndarray, cell: np.ndarray, margin: float, seed: int) -> str:
    return paired_stats(list(baseline), list(cell), margin=margin, seed=seed).outcome


def _judge(judge, items: list[dict], answers: list[str]) -> np.ndarray:
    """Scores (questions x criteria) of ``answers`` to the questions of ``items``."""
    judge_items = [
        JudgeItem(
            id=f"{it['id']}",
            question=it["question"],
            references=tuple(it["references"]),
            context=tuple(it.get("passages") or ()),
            answer=a,
        )
        for it, a in zip(items, answers)
    ]
    verdicts = judge.judge(judge_items)
    return np.array([[getattr(v, c) for c in CRITERIA] for v in verdicts], dtype=float)


def baseline_cells(profile: str, progress) -> tuple[MatrixSession, dict[str, dict]]:
    """The profile's baseline cells (ft0) with their answers and verdicts, computed once, then reused."""
    config = load_config(MATRIX, profile, {"sizes": "0"})
    session = MatrixSession(config, report_root=_cache_root() / "benchmarks" / "gate_power")
    cells = {}
    for cell in session.cells:
        progress(f"baseline answers of {cell.id}")
        session.evaluate(cell)
        cells[cell.dataset] = session.store.read(cell.id)
    return session, cells


def sampled_answers(
    session: MatrixSession, dataset: str, samples: int, temperature: float, progress
) -> list[list[str]]:
    """``samples`` answer sets of the profile's model to the dataset's eval prompts, seeded sampling."""
    config = session.config
    ctx = session.context(dataset)
    model = load_model(config.models[0].spec)
    sets = []
    for seed in range(1, samples + 1):
        progress(f"{dataset}: sampled answers, seed {seed} of {samples}")
        settings = GenerationSettings(max_new_tokens=config.max_new_tokens, temperature=temperature, seed=seed)
        sets.append([g.text for g in model.generate(list(ctx.prompts), settings)])
    return sets


def aa_rates(score_sets: list[np.ndarray], margin: float, resamples: int, rng: np.random.Generator) -> dict:
    """Fail and inconclusive rates of the gate between answer sets of the same model."""
    counts = {c: {"pass": 0, "fail": 0, "inconclusive": 0} for c in CRITERIA}
    sds = {c: [] for c in CRITERIA}
    n = score_sets[0].shape[0]
    for a, b in itertools.combinations(range(len(score_sets)), 2):
        for j, criterion in enumerate(CRITERIA):
            diff = score_sets[b][:, j] - score_sets[a][:, j]
            sds[criterion].append(float(np.nanstd(diff, ddof=1)))
            for r in range(resamples):
                idx = rng.integers(0, n, size=n)
                outcome = _gate(score_sets[a][idx, j], score_sets[b][idx, j], margin, seed=r)
                counts[criterion][outcome] += 1
    out = {}
    for criterion, c in counts.items():
        total = sum(c.values())
        out[criterion] = {
            "fail": _rate(c["fail"], total),
            "inconclusive": _rate(c["inconclusive"], total),
            "pass": _rate(c["pass"], total),
            "paired_sd": round(float(np.mean(sds[criterion])), 4),
        }
    return out


def injected(
    judge, items: list[dict], base_scores: np.ndarray, margin: float, draws: int, rng: np.random.Generator
) -> dict:
    """Detection of a known share of correct answers turned wrong, gated against the untouched baseline."""
    answers = [it["answer"] for it in items]
    n = len(items)
    # each question's wrong answer: the next question's answer (on topic, wrong) or a refusal, alternately
    wrong = [REFUSAL if i % 2 else answers[(i + 1) % n] for i in range(n)]
    wrong_scores = _judge(judge, items, wrong)
    correct = np.flatnonzero(base_scores[:, 0] >= CORRECT)
    out = {"correct_answers": int(correct.size), "questions": n, "shares": {}}
    for share in SHARES:
        k = max(1, int(round(share * correct.size))) if correct.size else 0
        tally = {c: {"fail": 0, "inconclusive": 0, "pass": 0} for c in CRITERIA}
        drops = []
        for d in range(draws):
            turned = rng.choice(correct, size=k, replace=False) if k else np.array([], dtype=int)
            cell = base_scores.copy()
            cell[turned] = wrong_scores[turned]
            drops.append(float(np.mean(cell[:, 0] - base_scores[:, 0])))
            for j, criterion in enumerate(CRITERIA):
                tally[criterion][_gate(base_scores[:, j], cell[:, j], margin, seed=d)] += 1
        out["shares"][f"{share:.2f}"] = {
            "answers_turned": k,
            "mean_accuracy_drop": round(float(np.mean(drops)), 3),
            **{
                c: {"detected": _rate(t["fail"], draws), "inconclusive": _rate(t["inconclusive"], draws)}
                for c, t in tally.items()
            },
        }
    return out


def measure(args: argparse.Namespace, progress) -> dict:
    start = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    session, cells = baseline_cells(args.profile, progress)
    config = session.config
    margin = float(config.margin)
    judge_name = next(iter(config.judges))
    judge = make_judge(judge_name)
    out = {
        "profile": args.profile,
        "judge": judge_name,
        "margin": margin,
        "eval_questions": config.eval_limit,
        "samples": args.samples,
        "temperature": args.temperature,
        "resamples": args.resamples,
        "draws": args.draws,
        "seed": args.seed,
        "machine": {
            "cpu": _machine(),
            "python": platform.python_version(),
            "avx2_path": os.environ.get("ATEN_CPU_CAPABILITY") == "avx2",
        },
        "datasets": {},
    }
    for dataset, cell in cells.items():
        items = cell["items"]
        base_scores = np.array(
            [[float((it["verdicts"].get(judge_name) or {}).get(c, float("nan"))) for c in CRITERIA] for it in items],
            dtype=float,
        )
        sets = sampled_answers(session, dataset, args.samples, args.temperature, progress)
        progress(f"{dataset}: judging {len(sets)} sampled answer sets")
        score_sets = [_judge(judge, items, answers) for answers in sets]
        progress(f"{dataset}: A/A gates and injected regressions")
        aa = aa_rates(score_sets, margin, args.resamples, rng)
        power = {
            c: {
                "paired_sd": aa[c]["paired_sd"],
                "minimum_detectable_drop": round(minimum_detectable_drop(aa[c]["paired_sd"], len(items), margin), 3),
                "questions_for_margin": {f"{m}": questions_for_margin(aa[c]["paired_sd"], m) for m in MARGINS},
            }
            for c in CRITERIA
        }
        out["datasets"][dataset] = {
            "n": len(items),
            "baseline_mean": {c: round(float(np.nanmean(base_scores[:, j])), 3) for j, c in enumerate(CRITERIA)},
            "aa": aa,
            "power": power,
            "injected": injected(judge, items, base_scores, margin, args.draws, rng),
        }
    totals = {}
    for c in CRITERIA:
        fails = sum(d["aa"][c]["fail"]["k"] for d in out["datasets"].values())
        inconc = sum(d["aa"][c]["inconclusive"]["k"] for d in out["datasets"].values())
        total = sum(d["aa"][c]["fail"]["n"] for d in out["datasets"].values())
        totals[c] = {"fail": _rate(fails, total), "inconclusive": _rate(inconc, total)}
    out["aa_all"] = totals
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _machine() -> str:
    return f"{_cpu()}, {os.cpu_count()} cores"


def table(result: dict) -> str:
    def pct(r):
        return f"{100 * r['rate']:5.1f}% [{100 * r['ci95'][0]:.1f}, {100 * r['ci95'][1]:.1f}]"

    lines = [
        f"gate power: profile {result['profile']}, judge {result['judge']}, margin {result['margin']}, "
        f"{result['eval_questions']} questions per dataset ({result['machine']['cpu']})",
        "",
        "A/A (same model, sampled answer sets; fail = false alarm)",
    ]
    for c, r in result["aa_all"].items():
        lines.append(f"  all datasets {c:13} fail {pct(r['fail'])}  inconclusive {pct(r['inconclusive'])}")
    for name, d in result["datasets"].items():
        for c in CRITERIA:
            a, p = d["aa"][c], d["power"][c]
            lines.append(
                f"  {name:12} {c:13} fail {pct(a['fail'])}  inconclusive {pct(a['inconclusive'])}  "
                f"paired SD {p['paired_sd']:.2f}  min detectable drop {p['minimum_detectable_drop']:.2f}"
            )
    lines += [
        "",
        "Injected regressions (share of correct answers turned wrong): detected (fail) / inconclusive, accuracy",
    ]
    for name, d in result["datasets"].items():
        inj = d["injected"]
        parts = [
            f"{float(s):.0%} ({v['answers_turned']} ans, drop {v['mean_accuracy_drop']:.2f}): "
            f"{100 * v['accuracy']['detected']['rate']:.0f}% / {100 * v['accuracy']['inconclusive']['rate']:.0f}%"
            for s, v in inj["shares"].items()
        ]
        lines.append(f"  {name:12} ({inj['correct_answers']} of {inj['questions']} correct)  " + ";  ".join(parts))
    lines.append(f"\n{result['seconds']:.0f} s")
    return "\n".join(lines)


def record(result: dict) -> None:
    """Keep the measured paired spreads for the dry run's "questions a margin needs"."""
    data = {
        "source": "python -m benchmarks.gate_power --record",
        "profile": result["profile"],
        "judge": result["judge"],
        "eval_questions": result["eval_questions"],
        "machine": result["machine"]["cpu"],
        "paired_sd": {
            c: round(float(np.mean([d["power"][c]["paired_sd"] for d in result["datasets"].values()])), 4)
            for c in CRITERIA
        },
    }
    tmp = RECORD.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, RECORD)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gate_power", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default", help="profile of test_cases/matrix.toml (default: default)")
    parser.add_argument("--samples", type=int, default=3, help="sampled answer sets per dataset for the A/A pairs")
    parser.add_argument("--temperature", type=float, default=0.7, help="sampling temperature of the A/A answer sets")
    parser.add_argument("--resamples", type=int, default=200, help="question resamples per A/A pair")
    parser.add_argument("--draws", type=int, default=50, help="random draws per injected share")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--record", action="store_true", help=f"write the paired spreads to {RECORD.relative_to(ROOT)}")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    from tqdm import tqdm

    bar = tqdm(desc="gate power", bar_format="{desc}", file=sys.stderr, disable=not sys.stderr.isatty())

    def progress(text: str) -> None:
        bar.set_description_str(f"gate power: {text}")
        if not sys.stderr.isatty():
            print(f"gate power: {text}", file=sys.stderr, flush=True)

    result = measure(args, progress)
    bar.close()
    if args.record:
        record(result)
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
