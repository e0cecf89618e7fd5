"""Optional dependencies of the export: onnx, onnxruntime, onnxscript, loaded when first used."""

from __future__ import annotations

from typing import Any

from catsplit.errors import CatsplitError

_HINT = "pip install 'catsplit[onnx]' (CPU) or 'catsplit[gpu]' (CUDA; never both onnxruntime packages together)"


def require_onnx() -> Any:
    """The `onnx` module, or a CatsplitError naming the pip package."""
    try:
        import onnx
    except ImportError as exc:
        raise CatsplitError(f"ONNX export needs the `onnx` package ({exc}); {_HINT}") from None
    return onnx


def require_onnxruntime() -> Any:
    """The `onnxruntime` module (CPU or GPU build), or a CatsplitError naming the pip package."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise CatsplitError(f"running ONNX models needs `onnxruntime` or `onnxruntime-gpu` ({exc}); {_HINT}") from None
    if not hasattr(onnxruntime, "InferenceSession"):
        # Both onnxruntime and onnxruntime-gpu were installed: they share one folder and break each other.
        raise CatsplitError(
            "onnxruntime is broken (no InferenceSession): onnxruntime and onnxruntime-gpu are probably both "
            "installed. pip uninstall -y onnxruntime onnxruntime-gpu, then install exactly one of them"
        )
    return onnxruntime


def require_onnxscript() -> Any:
    """torch.onnx.export's default (dynamo) exporter needs `onnxscript`."""
    try:
        import onnxscript
    except ImportError as exc:
        raise CatsplitError(f"torch.onnx.export needs the `onnxscript` package ({exc}); {_HINT}") from None
    return onnxscript
