"""``evalsuite index build`` (export an index with its manifest) and ``evalsuite index fetch``."""

from __future__ import annotations

import json

PRECISIONS = ("auto", "fp32", "bf16", "int8")


def _add_settings(p) -> None:
    from .chunking import ChunkerSettings  # deferred: a command loads only the stages it runs
    from .embedder import DEFAULT_EMBEDDER  # deferred: a command loads only the stages it runs

    p.add_argument("name", help="dataset: qasper, nq, bioasq, or all")
    p.add_argument(
        "--chunk-size", type=int, default=ChunkerSettings.size, help="tokens per chunk (default %(default)s)"
    )
    p.add_argument(
        "--chunk-overlap",
        type=int,
        default=ChunkerSettings.overlap,
        help="tokens shared by neighbours (default %(default)s)",
    )
    p.add_argument("--embedder", default=DEFAULT_EMBEDDER, help="embedder (default %(default)s)")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="embedder arithmetic; auto = this machine's path (bf16 with native bf16, else int8); "
        "an index is found only by machines whose embedder has the same precision",
    )
    p.add_argument("--index", choices=("flat", "hnsw"), default="flat", help="faiss index kind")
    p.add_argument("--json", action="store_true", help="print JSON")


def add_cli(sub) -> None:
    idx = sub.add_parser("index", help="build retrieval indexes as shippable files, or fetch them from a mirror")
    isub = idx.add_subparsers(dest="index_cmd", required=True)
    build = isub.add_parser(
        "build",
        help="write a dataset's index with a manifest (hashes of corpus, chunker, embedder; sha256 of each file)",
    )
    _add_settings(build)
    build.add_argument(
        "--out", required=True, metavar="DIR", help="folder to write <dataset>-<key>/ into, e.g. MIRROR/indexes"
    )
    build.set_defaults(func=_build)
    fetch = isub.add_parser(
        "fetch", help="install a mirror's prebuilt index of this machine's key into the index store"
    )
    _add_settings(fetch)
    fetch.add_argument(
        "--mirror", required=True, metavar="DIR_OR_URL", help="folder or URL holding indexes/<dataset>-<key>/"
    )
    fetch.set_defaults(func=_fetch)


def _settings(args):
    from .. import datasets  # deferred: a command loads only the stages it runs
    from .chunking import ChunkerSettings  # deferred: a command loads only the stages it runs
    from .embedder import Embedder  # deferred: a command loads only the stages it runs

    names = datasets.NAMES if args.name == "all" else (args.name,)
    return (
        [datasets.load(n) for n in names],
        ChunkerSettings(args.chunk_size, args.chunk_overlap),
        Embedder(args.embedder, precision=args.precision),
    )


def _build(args) -> int:
    from .prebuilt import export_index  # deferred: a command loads only the stages it runs

    loaded, chunker, embedder = _settings(args)
    rows = []
    for dataset in loaded:
        folder = export_index(
            dataset, args.out, chunker=chunker, embedder=embedder, kind=args.index, progress=not args.json
        )
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        rows.append(
            {
                "dataset": dataset.name,
                "folder": str(folder),
                "key": manifest["key"],
                "chunks": manifest["chunks"],
                "embedder": manifest["embedder"],
            }
        )
    if args.json:
        print(json.dumps(rows[0] if len(rows) == 1 else rows, indent=2))
    else:
        for r in rows:
            print(f"{r['dataset']:8} {r['chunks']:>7} chunks  {r['embedder']}  -> {r['folder']}")
    return 0


def _fetch(args) -> int:
    from .prebuilt import fetch_prebuilt_index  # deferred: a command loads only the stages it runs

    loaded, chunker, embedder = _settings(args)
    rows = []
    for dataset in loaded:
        folder = fetch_prebuilt_index(args.mirror, dataset, chunker=chunker, embedder=embedder, kind=args.index)
        rows.append({"dataset": dataset.name, "installed": str(folder) if folder else None})
    if args.json:
        print(json.dumps(rows[0] if len(rows) == 1 else rows, indent=2))
    else:
        for r in rows:
            print(
                f"{r['dataset']:8} "
                + (
                    f"installed {r['installed']}"
                    if r["installed"]
                    else "no prebuilt index of this key in the mirror: it is built on first use"
                )
            )
    return 0
