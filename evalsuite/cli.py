"""The ``evalsuite`` command. Each area registers its own subcommands; errors a user can fix
are printed as one line and exit with status 2. Output piped into a reader that stops early
(``| head``) ends the command quietly (status 141, as a tool stopped by SIGPIPE)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .errors import EvalsuiteError
from .redaction import scrub_text

# (module, what it adds): imported lazily so one area's missing optional package does not break the others
AREAS = (
    "evalsuite.datasets.cli",  # datasets stats, retrieval-eval
    "evalsuite.models.cli",  # generate
    "evalsuite.retrieval.cli",  # index build, index fetch
    "evalsuite.finetune.cli",  # finetune
    "evalsuite.judge.cli",  # judge
    "evalsuite.matrix.cli",  # run, report, compare
    "evalsuite._cachecli",  # cache info, cache prune
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evalsuite", description="Does this fine-tune make our RAG answers better or worse?"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in AREAS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name and err.name.startswith("evalsuite"):
                continue  # that area is not part of this installation
            raise
        module.add_cli(sub)
    return parser


def _stdout_closed() -> int:
    """The reader of our output went away: send the rest (and the final flush) to /dev/null."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    return 141


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        code = int(args.func(args) or 0)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        return _stdout_closed()
    except EvalsuiteError as err:
        print(f"evalsuite: error: {scrub_text(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("evalsuite: interrupted; finished work is saved and a rerun resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
