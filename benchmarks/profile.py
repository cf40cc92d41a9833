"""Where a real run of the matrix spends its time, and how close each stage is to the CPU's peak.

    python -m benchmarks.profile --profile smoke --json            # on the current cache
    python -m benchmarks.profile --profile smoke --cold --runs 2    # empty cache: cold run, then warm
    python -m benchmarks.profile --profile smoke --avx2 --cold      # as an AVX2-only CPU without bf16

Runs ``evalsuite run --profile NAME`` in a subprocess (so the figures are those a user
gets), then reads the run's ``results.json``: wall time per stage (index build, model load,
judge qualification, generation, fine-tuning, judging, report), achieved FLOP/s of
generation, fine-tuning and embedding against the measured fp32 peak of a matmul, and the
CPU flags that decided the code path. The throughputs are kept in the cache
(``evalsuite.throughput``). ``--avx2`` sets ``evalsuite.device.AVX2_EMULATION``: torch,
oneDNN, MKL and fbgemm kernels limited to AVX2 and bf16 off in evalsuite.

Stage seconds are sums over cells; under ``-n 2`` they can exceed the wall time. Memory: the
run's peak resident set (``ru_maxrss`` of its processes, what ``/usr/bin/time -v`` reports) and,
per stage, the largest resident set sampled while that stage ran in any cell
(``evalsuite.memory``), with the cell it was in.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from evalsuite import throughput as _throughput
from evalsuite.device import AVX2_EMULATION
from evalsuite.matrix import load_config
from evalsuite.models import capabilities, inference_precision, parse_spec, resolve_weights
from evalsuite.retrieval.prebuilt import fetch_prebuilt_index

ROOT = Path(__file__).resolve().parents[1]


def _stages(run_dir: Path) -> dict:
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    cells = [c for c in results["cells"] if c.get("timings")]
    index: dict[str, dict] = {}
    for c in cells:
        t = c["timings"]
        seen = index.setdefault(c["dataset"], {"seconds": 0.0, "cached": True})
        if t.get("index", 0.0) >= seen["seconds"]:
            seen.update(seconds=t.get("index", 0.0), cached=bool(t.get("index_cached")))
    qualification = 0.0
    for path in sorted((run_dir / "judges").glob("*.json")):
        qualification += float(json.loads(path.read_text(encoding="utf-8")).get("seconds", 0.0))
    judged: dict[str, dict] = {}
    for c in cells:
        for name, seconds in (c["timings"].get("judge") or {}).items():
            row = judged.setdefault(name, {"seconds": 0.0, "items": 0})
            row["seconds"] += seconds
            row["items"] += len(c.get("items") or [])
    stages = {
        "index_build": sum(v["seconds"] for v in index.values()),
        "model_load": sum(c["timings"].get("load", 0.0) for c in cells),
        "qualification": qualification,
        "generation": sum(c["timings"].get("generate", 0.0) for c in cells),
        "finetuning": sum(c["timings"].get("finetune", 0.0) for c in cells),
        "judging": sum(v["seconds"] for v in judged.values()),
    }
    return {
        "results": results,
        "cells": cells,
        "index": index,
        "judges": judged,
        "stages": stages,
        "memory": _stage_memory(run_dir, cells),
    }


def _stage_memory(run_dir: Path, cells: list) -> dict:
    """Per stage, the largest resident set (MiB) sampled while it ran in any cell, and where."""
    out: dict[str, dict] = {}

    def seen(stage: str, where: str, m: dict | None) -> None:
        peak = (m or {}).get("peak_mb")
        if peak is not None and peak > out.get(stage, {}).get("peak_mb", -1.0):
            out[stage] = {
                "peak_mb": round(peak, 1),
                "start_mb": m.get("start_mb"),
                "end_mb": m.get("end_mb"),
                "cell": where,
            }

    for path in sorted((run_dir / "judges").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        seen("qualification", data.get("name", path.stem), data.get("memory"))
    for c in cells:
        memory = c["timings"].get("memory") or {}
        for stage, m in memory.items():
            if isinstance(m, dict):
                seen(
                    "judging"
                    if stage.startswith("judge ")
                    else {
                        "load": "model_load",
                        "index": "index_build",
                        "generate": "generation",
                        "finetune": "finetuning",
                    }.get(stage, stage),
                    c["id"],
                    m,
                )
        if memory.get("after_release_mb") is not None:
            seen("between cells", c["id"], {"peak_mb": memory["after_release_mb"]})
    return out


def _model_config(spec: str) -> dict | None:

    parsed = parse_spec(spec)
    if capabilities(parsed).weights is None:
        return None
    path = Path(resolve_weights(parsed).path) / "config.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _flops(info: dict, peak: float) -> dict:
    """Achieved FLOP/s of generation, fine-tuning and embedding (multiply-adds of the linear maps
    and attention; elementwise work not counted) and their share of the fp32 peak."""

    out: dict = {}
    per_model: dict[str, dict] = {}
    for c in info["cells"]:
        if c["spec"] not in per_model:
            config = _model_config(c["spec"])
            per_model[c["spec"]] = _throughput.transformer_flops(config) if config else {}
    gen_flops = gen_seconds = gen_prompt = gen_completion = 0.0
    train_flops = train_seconds = train_tokens = 0.0
    for c in info["cells"]:
        f = per_model.get(c["spec"])
        if not f:
            continue
        fresh = [i for i in c.get("items") or [] if not i.get("cached")]
        if fresh and len(fresh) == len(c.get("items") or []):
            for i in fresh:
                p, n = i["prompt_tokens"], i["completion_tokens"]
                gen_flops += (
                    f["body"] * (p + n)
                    + f["head"] * (1 + n)
                    + f["attention_per_context"] * (p * p / 2 + n * (p + n / 2))
                )
                gen_prompt += p
                gen_completion += n
            gen_seconds += c["timings"].get("generate", 0.0)
        manifest = (c.get("adapter") or {}).get("manifest") or {}
        if manifest and not c["adapter"].get("cached"):
            train_flops += (
                3 * f["body"] * manifest["tokens"]
            )  # the 6 * N * tokens rule (N parameters: 2N FLOPs a token forward)
            train_seconds += manifest["train_seconds"]
            train_tokens += manifest["tokens"]
            floor = peak / (3 * f["body"])
            out["finetune_6n_floor_tokens_per_s"] = round(floor, 1)
            out["finetune_dtype"] = {"float32": "fp32", "bfloat16": "bf16"}.get(
                manifest.get("dtype"), manifest.get("dtype")
            )
    path = inference_precision("cpu")
    if gen_seconds:
        out["generation_flops_per_s"] = gen_flops / gen_seconds
        out["generation_share_of_peak"] = round(gen_flops / gen_seconds / peak, 3)
        out["generation_path"] = path
        _throughput.save(
            f"run-generate/{path}",
            {
                "tokens_per_s": (gen_prompt + gen_completion) / gen_seconds,
                "prompt_tokens": gen_prompt,
                "completion_tokens": gen_completion,
                "seconds": gen_seconds,
            },
        )
    if train_seconds:
        out["finetune_tokens_per_s"] = round(train_tokens / train_seconds, 1)
        out["finetune_flops_per_s"] = train_flops / train_seconds
        out["finetune_share_of_peak"] = round(train_flops / train_seconds / peak, 3)
        _throughput.save(
            f"train/{out.get('finetune_dtype')}",
            {"tokens_per_s": train_tokens / train_seconds, "tokens": train_tokens, "seconds": train_seconds},
        )
    for name, row in info["judges"].items():
        if row["seconds"] > 0:
            out.setdefault("judge_items_per_s", {})[name] = round(row["items"] / row["seconds"], 2)
            _throughput.save(f"judge/{name}", {"items_per_s": row["items"] / row["seconds"], **row})
    embeds = {k: v for k, v in _throughput.load().items() if k.startswith("embed/")}
    for name, entry in embeds.items():
        if entry.get("flops_per_s"):
            out.setdefault("embedding", {})[name] = {
                "chunks_per_s": round(entry["chunks_per_s"], 1),
                "flops_per_s": entry["flops_per_s"],
                "share_of_peak": round(entry["flops_per_s"] / peak, 3),
            }
    return out


def profile_once(args, report_root: Path, run_id: str) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "evalsuite",
        "run",
        "--profile",
        args.profile,
        "--report-dir",
        str(report_root),
        "--run-id",
        run_id,
        *args.run_args,
    ]
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err, text=True, env=dict(os.environ))
        _, status, usage = os.wait4(proc.pid, 0)  # ru_maxrss: the largest resident set of the run's processes
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        run = subprocess.CompletedProcess(cmd, proc.returncode, out.read(), err.read())
    peak_mb = usage.ru_maxrss / 1024  # KiB on Linux
    run_dir = report_root / "runs" / run_id
    if not (run_dir / "results.json").is_file():
        sys.stderr.write(run.stdout[-4000:] + run.stderr[-4000:])
        raise SystemExit(f"the run wrote no results.json (exit status {run.returncode})")
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "evalsuite", "report", str(run_dir)],
        cwd=ROOT,
        capture_output=True,
        env=dict(os.environ),
        check=True,
    )
    report = time.perf_counter() - start
    info = _stages(run_dir)
    stages = {**info["stages"], "report": report}
    stages["other"] = max(0.0, wall - sum(stages.values()))
    return {
        "exit_status": run.returncode,
        "wall_seconds": round(wall, 1),
        "peak_rss_mb": round(peak_mb, 1),
        "stages": {k: round(v, 1) for k, v in stages.items()},
        "memory": info["memory"],
        "index": {k: {"seconds": round(v["seconds"], 1), "cached": v["cached"]} for k, v in info["index"].items()},
        "cells": {c["id"]: c["status"] for c in info["results"]["cells"]},
        "_info": info,
    }


def _install_indexes(args) -> dict:
    """Install the mirror's indexes of the profile's datasets; how long it took and which were found."""

    datasets = load_config(ROOT / "test_cases" / "matrix.toml", args.profile).datasets
    start = time.perf_counter()
    found = {name: fetch_prebuilt_index(args.mirror, name) is not None for name in datasets}
    return {"seconds": round(time.perf_counter() - start, 1), "found": found}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="smoke", help="matrix profile to run (default smoke)")
    parser.add_argument("--cold", action="store_true", help="run on an empty temporary cache (removed afterwards)")
    parser.add_argument(
        "--runs", type=int, default=1, help="runs on the same cache, e.g. 2 with --cold: cold, then warm"
    )
    parser.add_argument("--avx2", action="store_true", help="compute as an AVX2-only CPU without bf16 (emulation)")
    parser.add_argument(
        "--mirror",
        metavar="DIR_OR_URL",
        help="first install the mirror's prebuilt indexes of the "
        "profile's datasets (evalsuite.retrieval.prebuilt.fetch_prebuilt_index), as a set-up from a mirror does",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("run_args", nargs="*", help="more options for `evalsuite run`, after --")
    args = parser.parse_args(argv)

    if args.avx2:
        if "torch" in sys.modules:
            raise SystemExit("--avx2 must be set before torch is imported: run python -m benchmarks.profile")
        os.environ.update(AVX2_EMULATION)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    scratch = Path(tempfile.mkdtemp(prefix="evalsuite-profile-"))
    if args.cold:
        os.environ["EVALSUITE_CACHE"] = str(scratch / "cache")
    try:
        peak = _throughput.peak_fp32_flops()
        installed = _install_indexes(args) if args.mirror else None
        runs = []
        for n in range(args.runs):
            one = profile_once(args, scratch / "reports", f"profile-{n}")
            one["flops"] = _flops(one.pop("_info"), peak)
            one["cache"] = "cold" if args.cold and n == 0 else "warm"
            runs.append(one)
            _throughput.save(
                f"profile/{args.profile}/{one['cache']}", {"wall_seconds": one["wall_seconds"], **one["stages"]}
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    out = {
        "profile": args.profile,
        "emulation": "avx2, no bf16" if args.avx2 else None,
        "cpu": _throughput.cpu_flags(),
        "prebuilt_indexes": installed,
        "peak_fp32_flops": peak,
        "runs": runs,
        "note": "stage seconds are sums over cells; the machine may be shared: compare runs made together",
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        cpu = out["cpu"]
        print(
            f"cpu {cpu['cpu']} ({cpu['cores']} cores), torch {cpu['torch_capability']}, bf16 {cpu['bf16']}, "
            f"avx512_vnni {cpu['avx512_vnni']}, amx {cpu['amx_bf16']}; peak fp32 {peak / 1e9:.0f} GFLOP/s"
        )
        for run in runs:
            print(
                f"\n{run['cache']} run: {run['wall_seconds']:.0f} s (exit status {run['exit_status']}), "
                f"peak resident set {run['peak_rss_mb']:.0f} MiB"
            )
            print(f"  {'stage':14} {'seconds':>10} {'peak MiB':>9}  where the peak was")
            for stage, seconds in run["stages"].items():
                m = run["memory"].get(stage) or {}
                peak = f"{m['peak_mb']:9.0f}" if m else f"{'-':>9}"
                print(f"  {stage:14} {seconds:8.1f} s {peak}  {m.get('cell', '')}")
            if "between cells" in run["memory"]:
                m = run["memory"]["between cells"]
                print(f"  {'between cells':14} {'':10} {m['peak_mb']:9.0f}  after {m['cell']} released its models")
            for key, value in run["flops"].items():
                print(f"  {key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
