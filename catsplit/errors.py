"""The exception types catsplit raises (bad input; a missing optional package), and how its warnings find the user's line."""

from __future__ import annotations

import os
import sys


class CatsplitError(ValueError):
    """Bad input: the message names the offending value and how to fix it."""


class MissingDependencyError(CatsplitError, ImportError):
    """An optional package is missing or broken; the message names the pip command that fixes it.

    Both a `CatsplitError` (catsplit's one error type) and an `ImportError` (what callers that
    probe for optional packages catch). Raised only by `catsplit.optional`.
    """

    def __init__(self, message: str, *, name: str | None = None) -> None:
        """Args:
        message: what needs the package, and the pip command.
        name: the module that could not be imported (`ImportError.name`).
        """
        super().__init__(message)
        # ValueError's __init__ runs, not ImportError's: set ImportError's fields by hand.
        self.msg = message
        self.name = name


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn_caller(message: str, category: type[Warning]) -> None:
    """`warnings.warn`, attributed to the first frame outside catsplit: the user's call, however deep the cause.

    A fixed `stacklevel` breaks as soon as one more catsplit function sits between the user and the
    warning (split, split_file, edit_onnx and the CLI reach the methods by different paths).
    """
    import warnings

    own = [_PACKAGE_DIR]
    export = sys.modules.get("catsplit.export")  # the export/ folder, wherever it is installed
    if export is not None and getattr(export, "__file__", None):
        own.append(os.path.dirname(os.path.abspath(export.__file__)) + os.sep)
    frame, level = sys._getframe(0), 1  # level 1 = this function
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(tuple(own)):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
