"""The one exception type catsplit raises for bad input, and how its warnings find the user's line."""

from __future__ import annotations

import os
import sys


class CatsplitError(ValueError):
    """Bad input: the message names the offending value and how to fix it."""


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
