"""catsplit: split a coarse class of a trained classifier head into fine subclasses, zero-shot.

A thin package: everything is re-exported lazily, so `import catsplit` loads neither torch nor
any encoder until a name is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from catsplit._version import __version__
from catsplit.errors import CatsplitError, MissingDependencyError

# public name -> module that defines it
_EXPORTS = {
    "Head": "catsplit.head",
    "load_head": "catsplit.io.loading",
    "save_head": "catsplit.io.headfile",
    "split_file": "catsplit.io.streaming",
    "save_model": "catsplit.formats.writer",
    "open_model": "catsplit.formats.model",
    "split": "catsplit.edit",
    "unsplit": "catsplit.edit",
    "evaluate": "catsplit.metrics",
    "Scores": "catsplit.metrics",
    "SplitConfig": "catsplit.config",
    "AlignmentConfig": "catsplit.methods.alignment",
    "RetrievalConfig": "catsplit.methods.retrieval",
    "TextConfig": "catsplit.methods.text",
    "infer_structure": "catsplit.structure",
    "Structure": "catsplit.structure",
    "default_text_encoder": "catsplit.encoders",
    "load_text_encoder": "catsplit.encoders",
    "text_head": "catsplit.texthead",
    "finetune": "catsplit.lowshot",
    "FinetuneConfig": "catsplit.config",
    "refine": "catsplit.refinement",
    "RefineConfig": "catsplit.config",
    "relabel": "catsplit.relabelling",
    "calibrate": "catsplit.calibration",
    "merge": "catsplit.merging",
    "apply": "catsplit.model_edit",
}

__all__ = ["CatsplitError", "MissingDependencyError", "__version__", *_EXPORTS]

if TYPE_CHECKING:
    from catsplit.config import SplitConfig
    from catsplit.methods.alignment import AlignmentConfig
    from catsplit.methods.retrieval import RetrievalConfig
    from catsplit.methods.text import TextConfig
    from catsplit.edit import split, unsplit
    from catsplit.config import FinetuneConfig
    from catsplit.lowshot import finetune
    from catsplit.config import RefineConfig
    from catsplit.refinement import refine
    from catsplit.relabelling import relabel
    from catsplit.calibration import calibrate
    from catsplit.merging import merge
    from catsplit.model_edit import apply
    from catsplit.texthead import text_head
    from catsplit.encoders import default_text_encoder, load_text_encoder
    from catsplit.head import Head
    from catsplit.io.headfile import save_head
    from catsplit.io.loading import load_head
    from catsplit.metrics import Scores, evaluate
    from catsplit.io.streaming import split_file
    from catsplit.formats.model import open_model
    from catsplit.formats.writer import save_model
    from catsplit.structure import Structure, infer_structure


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'catsplit' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
