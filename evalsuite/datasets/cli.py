"""``evalsuite datasets stats`` and ``evalsuite retrieval-eval``."""

from __future__ import annotations

import json
import sys
from collections import Counter

from ..errors import ConfigError
from . import NAMES, load, require_passages


def _add_common(p) -> None:
    p.add_argument("name", help="dataset: qasper, nq, bioasq, all, or a name of your own with --path")
    p.add_argument(
        "--path", help="a file (or hub:<id>) instead of the data root's: another file of a release, or your own data"
    )
    p.add_argument(
        "--format",
        help="how to read --path: qasper, nq, bioasq, qa (the generic QA format) or a plugin's format "
        "(default: the dataset name when it is a format, else qa)",
    )
    p.add_argument("--corpus", help="a passage file (JSON lines or CSV with id, title, text) for the qa format")
    p.add_argument(
        "--columns", metavar="FIELD=COLUMN,...", help="read qa fields from other columns, e.g. question=q,answers=a"
    )
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a format option, e.g. scope=document (repeatable)",
    )
    p.add_argument("--split", help="split to read with --path hub:<id> (default train)")
    p.add_argument("--skip-invalid", action="store_true", help="leave out invalid records and list them at the end")
    p.add_argument("--seed", type=int, default=0, help="seed of the pool/eval split")
    p.add_argument("--json", action="store_true", help="print JSON")


def add_cli(sub) -> None:
    ds = sub.add_parser("datasets", help="fetch and inspect the datasets")
    dsub = ds.add_subparsers(dest="datasets_cmd", required=True)
    dl = dsub.add_parser(
        "download", help="fill the data root from a mirror (a folder or an http(s) URL), verified by sha256"
    )
    dl.add_argument(
        "name",
        nargs="?",
        default="all",
        help="dataset to fetch (qasper, nq, bioasq, judge_human, judge_longform) or all (default)",
    )
    dl.add_argument(
        "--mirror",
        required=True,
        metavar="DIR_OR_URL",
        help="folder or URL holding <dataset>/<file>, e.g. ../shared/data",
    )
    dl.add_argument("--quiet", action="store_true", help="no progress bars")
    dl.add_argument(
        "--no-index",
        action="store_true",
        help="do not install the mirror's prebuilt retrieval indexes (MIRROR/indexes/, see `evalsuite index build`)",
    )
    dl.set_defaults(func=_download)
    st = dsub.add_parser("stats", help="questions, passages, split sizes and answer types")
    _add_common(st)
    st.set_defaults(func=_stats)
    rv = sub.add_parser("retrieval-eval", help="recall@k and MRR of retrieval on the eval split")
    _add_common(rv)
    rv.add_argument("--k", type=int, default=5, help="passages retrieved per question (default 5, as in the study)")
    rv.add_argument("--index", choices=("flat", "hnsw"), default="flat", help="faiss index kind")
    rv.set_defaults(func=_retrieval)


def _pairs(text: str | None, flag: str) -> list[tuple[str, str]]:
    out = []
    for item in [t for t in (text or "").split(",") if t.strip()]:
        key, eq, value = item.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise ConfigError(f"{flag} {item!r}: write NAME=VALUE")
        out.append((key.strip(), value.strip()))
    return out


def _datasets(args):
    names = NAMES if args.name == "all" else (args.name,)
    given = [f for f in ("path", "format", "corpus", "columns") if getattr(args, f)] + (
        ["option"] if args.option else []
    )
    if given and len(names) > 1:
        raise ConfigError(f"--{given[0]} needs one dataset name, not 'all'")
    options = [pair for text in args.option for pair in _pairs(text.replace(",", "\0"), "--option")]
    options = [(k, v.replace("\0", ",")) for k, v in options]  # one KEY=VALUE per --option; the value may hold commas
    return [
        load(
            n,
            args.path,
            format=args.format,
            corpus=args.corpus,
            columns=_pairs(args.columns, "--columns"),
            split=args.split,
            options=options,
            skip_invalid=args.skip_invalid,
        )
        for n in names
    ]


def _report_invalid(datasets) -> None:
    bad = [b for d in datasets for b in d.invalid]
    if bad:
        print(f"skipped {len(bad)} invalid record(s):", file=sys.stderr)
        for b in bad:
            print(f"  {b}", file=sys.stderr)


def stats(dataset, seed: int = 0) -> dict:
    from ..splits import split  # deferred: a command loads only the stages it runs

    sp = split(dataset, seed)
    return {
        "dataset": dataset.name,
        "examples": len(dataset.examples),
        "passages": len(dataset.passages),
        "pool": len(sp.pool),
        "eval": len(sp.eval),
        "answer_types": dict(sorted(Counter(e.answer_type for e in dataset.examples).items())),
    }


def _stats(args) -> int:
    datasets = _datasets(args)
    rows = [stats(d, args.seed) for d in datasets]
    if args.json:
        print(json.dumps(rows[0] if len(rows) == 1 else rows, indent=2))
    else:
        w = max(8, *(len(r["dataset"]) for r in rows))
        print(f"{'dataset':{w}} {'questions':>9} {'passages':>8} {'pool':>5} {'eval':>5}  answer types")
        for r in rows:
            types = ", ".join(f"{k} {v}" for k, v in r["answer_types"].items())
            print(f"{r['dataset']:{w}} {r['examples']:>9} {r['passages']:>8} {r['pool']:>5} {r['eval']:>5}  {types}")
    _report_invalid(datasets)
    return 0


def _retrieval(args) -> int:
    from ..retrieval.evaluate import retrieval_eval  # deferred: a command loads only the stages it runs

    datasets = [require_passages(d) for d in _datasets(args)]
    rows = []
    for d in datasets:
        r = retrieval_eval(d, args.k, seed=args.seed, progress=not args.json, index=args.index)
        rows.append({"dataset": d.name, **r})
    if args.json:
        out = [{k: v for k, v in r.items() if k in (f"recall@{args.k}", "mrr", "questions", "seconds")} for r in rows]
        print(json.dumps(out[0] if len(out) == 1 else out, indent=2))
    else:
        w = max(8, *(len(r["dataset"]) for r in rows))
        print(f"{'dataset':{w}} {'recall@' + str(args.k):>9} {'MRR':>6} {'questions':>9} {'chunks':>7}  index")
        for r in rows:
            how = (
                f"loaded from cache in {r['index_seconds']:.1f}s"
                if r["index_cached"]
                else f"built in {r['index_seconds']:.1f}s"
            )
            print(
                f"{r['dataset']:{w}} {r[f'recall@{args.k}']:>9.3f} {r['mrr']:>6.3f} {r['questions']:>9} "
                f"{r['chunks']:>7}  {how}"
            )
    _report_invalid(datasets)
    return 0


def _download(args) -> int:
    from ._fetch import data_root, download  # deferred: a command loads only the stages it runs

    results = download(args.name, args.mirror, progress=not args.quiet)
    fetched = [r for r in results if r.status != "present"]
    for r in fetched:
        print(f"{r.status:8} {r.dataset}/{r.name} ({r.bytes:,} bytes)")
    print(f"data root {data_root()}: {len(results)} files verified, {len(fetched)} fetched")
    if not args.no_index:
        _install_indexes(args.mirror, sorted({r.dataset for r in results}), quiet=args.quiet)
    return 0


def _install_indexes(mirror: str, names: list[str], quiet: bool) -> None:
    """Install the mirror's prebuilt index of each retrievable dataset whose key matches the index
    this machine would build (its embedder precision included), verified by sha256."""
    from evalsuite.retrieval import fetch_prebuilt_index  # deferred: a command loads only the stages it runs

    from . import NAMES  # deferred: a command loads only the stages it runs

    for name in names:
        if name not in NAMES:  # judge_human, judge_longform: nothing to retrieve from
            continue
        folder = fetch_prebuilt_index(mirror, name)
        if folder is not None:
            print(f"index    {name}: installed {folder.name} from the mirror")
        elif not quiet:
            print(
                f"index    {name}: the mirror has no prebuilt index for this machine's embedder; it is built on "
                f"first use"
            )
