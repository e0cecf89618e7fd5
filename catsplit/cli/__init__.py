"""The `catsplit` command: a thin layer over the Python API.

    catsplit split | unsplit | finetune | inspect      (editing heads: catsplit/cli/edit.py)
    catsplit refine | relabel                          (label-free: catsplit/cli/refine.py)
    catsplit bench | demo                              (measuring methods: catsplit/cli/bench.py)
    catsplit export | predict | edit-onnx | triton     (deployment: catsplit/cli/deploy.py)

Argument groups the commands share are in catsplit/cli/args.py. What building the parser needs
(choices, defaults) is imported at module level; what a command needs when it runs is imported
inside it, so the library is looked up at call time.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any, Sequence

from catsplit.cli import bench, deploy, edit, refine
from catsplit.errors import CatsplitError


def build_parser() -> argparse.ArgumentParser:
    """The `catsplit` parser with every command registered (in the order `catsplit --help` lists them)."""
    parser = argparse.ArgumentParser(prog="catsplit", description="Split a class of a trained classifier head, zero-shot.")
    sub = parser.add_subparsers(dest="command", required=True)
    edit.add_commands(sub)  # split, unsplit, finetune, inspect
    refine.add_commands(sub)  # refine, relabel
    bench.add_commands(sub)  # bench, demo
    deploy.add_commands(sub)  # export, predict, edit-onnx, triton
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; library errors become `catsplit: error: ...` on stderr and exit status 2."""
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():  # restores the caller's showwarning on the way out
        warnings.showwarning = _show_warning
        try:
            return args.func(args)
        except CatsplitError as exc:
            print(f"catsplit: error: {one_line(str(exc))}", file=sys.stderr)
            return 2


_LINE_BREAKS = {ord(c): c.encode("unicode_escape").decode() for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"}


def one_line(message: str) -> str:
    """`message` with its line breaks escaped (`\\n`): an error is one line, whatever text from a file it quotes."""
    return message.translate(_LINE_BREAKS)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
                  line: str | None = None) -> None:
    """Warnings as one line like errors: on the command line a source location (the launcher's) means nothing."""
    print(f"catsplit: warning: {one_line(str(message))}", file=sys.stderr if file is None else file)

