"""CLIP's text tower in plain torch, read from a Hugging Face folder (`CLIPTextModel`,
`CLIPTextModelWithProjection`, or a whole `CLIPModel`): `model.safetensors` + `config.json` + `tokenizer.json`.

The paper's text encoder is CLIP ViT-L/14's; no package ships it, but users who have it as a Hugging Face
folder can use it without transformers. The forward pass is CLIP's: token + position embeddings, pre-LN
transformer layers with a causal mask, a final LayerNorm, the state at the end-of-text token, and the
projection into CLIP's joint space when the weights have one. Nothing heavy is imported before an
encoder is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from catsplit.encoders.base import BatchedTextEncoder, load_tokenizer, token_rows
from catsplit.errors import CatsplitError
from catsplit.io.readers import read_json

if TYPE_CHECKING:  # type names only; never imported at run time here
    import torch

CLIP_FILES = ("model.safetensors", "config.json", "tokenizer.json")
#: config.json model types read as CLIP: a text tower's own config, or a whole CLIP model's (text_config inside)
CLIP_MODEL_TYPES = ("clip_text_model", "clip")
SIZE_FIELDS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "max_position_embeddings",
               "vocab_size")
ACTIVATIONS = ("quick_gelu", "gelu", "gelu_new", "gelu_pytorch_tanh", "relu")
_PREFIX = "text_model."  # CLIPModel / CLIPTextModelWithProjection keep the tower under this name


def is_clip_config(path: Path) -> bool:
    """Whether the config.json at `path` names a CLIP model (its model_type), without checking the rest."""
    cfg = read_json(path, "model config")
    return isinstance(cfg, dict) and cfg.get("model_type") in CLIP_MODEL_TYPES


def read_clip_config(path: Path) -> dict[str, Any]:
    """The text tower's settings from a CLIPTextConfig or a CLIPConfig (its `text_config`), every field the forward
    pass uses checked: a CatsplitError naming the field otherwise, before any weight is read.

    Returns:
        the text config, with `projection_dim` (CLIPConfig keeps it at the top) and CLIP's defaults filled in.
    """
    top = read_json(path, "CLIP config")
    if not isinstance(top, dict) or top.get("model_type") not in CLIP_MODEL_TYPES:
        raise CatsplitError(f"{path} is not a CLIP config: model_type must be one of {', '.join(CLIP_MODEL_TYPES)}")
    cfg = top
    if top["model_type"] == "clip":
        cfg = top.get("text_config")
        if not isinstance(cfg, dict):
            raise CatsplitError(f"{path}: a CLIP model's config needs a text_config object, got {cfg!r:.60}")
        cfg = {"projection_dim": top.get("projection_dim", 512), **cfg}
    missing = [k for k in SIZE_FIELDS if k not in cfg]
    if missing:
        raise CatsplitError(f"{path}: the CLIP text config lacks {', '.join(missing)}")
    for key in SIZE_FIELDS + ("projection_dim",):
        v = cfg.get(key, 1)
        if v is None and key == "projection_dim":
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise CatsplitError(f"{path}: {key} must be a positive integer, got {v!r:.40}")
    eps = cfg.setdefault("layer_norm_eps", 1e-5)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps <= 1.0:
        raise CatsplitError(f"{path}: layer_norm_eps must be a small positive number (such as 1e-5), got {eps!r:.40}")
    if cfg.setdefault("hidden_act", "quick_gelu") not in ACTIVATIONS:
        raise CatsplitError(f"{path}: hidden_act {cfg['hidden_act']!r:.40} is not supported, only {', '.join(ACTIVATIONS)}")
    eos = cfg.setdefault("eos_token_id", 2)  # absent in old configs, whose pooling (2: argmax of the ids) is kept
    if isinstance(eos, bool) or not isinstance(eos, int) or not 0 <= eos < cfg["vocab_size"]:
        raise CatsplitError(f"{path}: eos_token_id must be a token id in [0, {cfg['vocab_size']}), got {eos!r:.40}")
    if cfg["hidden_size"] % cfg["num_attention_heads"]:
        raise CatsplitError(f"{path}: hidden_size is not a multiple of num_attention_heads")
    return cfg


class CLIPTextEncoder(BatchedTextEncoder):
    """CLIP's text tower: the end-of-text state (projected into the joint space when the weights have
    `text_projection`), L2-normalised. Matches transformers' CLIPTextModel(WithProjection) without it."""

    def __init__(self, model_dir: str | Path, *, batch_size: int = 64, max_length: int | None = None,
                 projection: bool | None = None, device: str = "cpu") -> None:
        """Load tokenizer, config and weights.

        Args:
            model_dir: folder with model.safetensors, config.json (CLIPTextConfig or CLIPConfig), tokenizer.json.
            batch_size: texts per forward pass.
            max_length: tokens per text, start and end tokens included (default: the position table, 77 in
                CLIP); longer texts are truncated with a warning.
            projection: apply `text_projection` (None: when the weights have it).
            device: torch device for the forward pass.
        """
        import torch

        from catsplit.io.safetensors import read_safetensors  # imports torch: only when an encoder is built

        model_dir = Path(model_dir)
        missing = [f for f in CLIP_FILES if not (model_dir / f).is_file()]
        if missing:
            raise CatsplitError(f"{model_dir} is not a CLIP text model folder: missing {', '.join(missing)}")
        cfg = read_clip_config(model_dir / "config.json")
        positions = cfg["max_position_embeddings"]
        max_length = positions if max_length is None else max_length
        if isinstance(max_length, bool) or not isinstance(max_length, int) or not 3 <= max_length <= positions:
            raise CatsplitError(f"max_length must be in [3, {positions}] (the model's position table), got {max_length!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise CatsplitError(f"batch_size must be >= 1, got {batch_size!r}")
        self.model_dir, self._cfg = model_dir, cfg
        self.name = model_dir.resolve().name
        self.batch_size, self.max_length = batch_size, max_length
        self.device = torch.device(device)
        self.tokenizer = load_tokenizer(model_dir / "tokenizer.json")
        sd = read_safetensors(model_dir / "model.safetensors", "CLIP weights file")[0]
        self._w = self._load_weights(sd, projection)
        self.dim = int(self._w["text_projection.weight"].shape[0] if "text_projection.weight" in self._w else cfg["hidden_size"])
        vocab = token_rows(self.tokenizer)
        if vocab > cfg["vocab_size"]:  # a token id past the table would fail at the first text
            raise CatsplitError(f"{model_dir / 'tokenizer.json'} has token ids up to {vocab - 1} but the model's token table has "
                                f"{cfg['vocab_size']} rows; use the tokenizer that came with the model")

    def _load_weights(self, sd: dict[str, torch.Tensor], projection: bool | None) -> dict[str, torch.Tensor]:
        """Check names, shapes and values of what the forward pass uses; drop the rest (a vision tower, buffers)."""
        import torch

        cfg, where = self._cfg, self.model_dir / "model.safetensors"
        H, I = cfg["hidden_size"], cfg["intermediate_size"]
        tower = {k.removeprefix(_PREFIX): v for k, v in sd.items() if k.startswith(_PREFIX) or not k.startswith("vision_model.")}
        has_projection = "text_projection.weight" in tower
        if projection and not has_projection:
            raise CatsplitError(f"{where} has no text_projection.weight (a CLIPTextModel); pass projection=None or False")
        w: dict[str, torch.Tensor] = {}

        def take(shapes: dict[str, tuple[int, ...]]) -> None:
            for k, shape in shapes.items():
                if k not in tower:
                    raise CatsplitError(f"{where}: tensor {k!r} missing (nor under {_PREFIX!r})")
                t = tower[k]
                if t.ndim != len(shape) or any(s != -1 and s != d for s, d in zip(shape, t.shape)):
                    raise CatsplitError(f"{where}: {k} has shape {tuple(t.shape)}, config says {shape}")
                if not t.is_floating_point():
                    raise CatsplitError(f"{where}: tensor {k!r} has dtype {str(t.dtype).removeprefix('torch.')}; CLIP weights are floats")
                w[k] = t.to(self.device, torch.float32)
                if not torch.isfinite(w[k]).all():
                    raise CatsplitError(f"{where}: tensor {k!r} holds NaN or inf; the weights are damaged")

        top = {"embeddings.token_embedding.weight": (cfg["vocab_size"], H),
               "embeddings.position_embedding.weight": (cfg["max_position_embeddings"], H),
               "final_layer_norm.weight": (H,), "final_layer_norm.bias": (H,)}
        if has_projection and projection is not False:
            top["text_projection.weight"] = (cfg.get("projection_dim") or -1, H)
        take(top)
        for i in range(cfg["num_hidden_layers"]):  # layer by layer: a forged layer count fails at the first missing one
            p, shapes = f"encoder.layers.{i}.", {}
            for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
                shapes[f"{p}self_attn.{name}.weight"], shapes[f"{p}self_attn.{name}.bias"] = (H, H), (H,)
            for ln in ("layer_norm1", "layer_norm2"):
                shapes[f"{p}{ln}.weight"], shapes[f"{p}{ln}.bias"] = (H,), (H,)
            shapes[f"{p}mlp.fc1.weight"], shapes[f"{p}mlp.fc1.bias"] = (I, H), (I,)
            shapes[f"{p}mlp.fc2.weight"], shapes[f"{p}mlp.fc2.bias"] = (H, I), (H,)
            take(shapes)
        return w

    def _forward(self, ids: torch.Tensor) -> torch.Tensor:
        """CLIP's text transformer. ids: int64 [B, T] -> the pooled (end-of-text) states [B, H] or [B, P]."""
        import torch
        import torch.nn.functional as F

        cfg, w = self._cfg, self._w
        B, T = ids.shape
        H, nh, eps, act = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"], cfg["hidden_act"]
        x = w["embeddings.token_embedding.weight"][ids] + w["embeddings.position_embedding.weight"][:T]  # [B, T, H]
        for i in range(cfg["num_hidden_layers"]):
            p = f"encoder.layers.{i}."
            h = F.layer_norm(x, (H,), w[p + "layer_norm1.weight"], w[p + "layer_norm1.bias"], eps)
            q, k, v = (F.linear(h, w[f"{p}self_attn.{n}_proj.weight"], w[f"{p}self_attn.{n}_proj.bias"])
                       .view(B, T, nh, H // nh).transpose(1, 2) for n in ("q", "k", "v"))  # each [B, nh, T, H/nh]
            # causal: a token sees only those before it, so right padding never reaches a real token
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, H)
            x = x + F.linear(a, w[p + "self_attn.out_proj.weight"], w[p + "self_attn.out_proj.bias"])
            h = F.layer_norm(x, (H,), w[p + "layer_norm2.weight"], w[p + "layer_norm2.bias"], eps)
            h = F.linear(h, w[p + "mlp.fc1.weight"], w[p + "mlp.fc1.bias"])  # [B, T, I]
            if act == "quick_gelu":
                h = h * torch.sigmoid(1.702 * h)
            elif act == "gelu":
                h = F.gelu(h)
            elif act == "relu":
                h = F.relu(h)
            else:
                h = F.gelu(h, approximate="tanh")
            x = x + F.linear(h, w[p + "mlp.fc2.weight"], w[p + "mlp.fc2.bias"])
        x = F.layer_norm(x, (H,), w["final_layer_norm.weight"], w["final_layer_norm.bias"], eps)
        # old configs (eos_token_id 2): the highest id is the end-of-text token; else its first occurrence
        eos = cfg["eos_token_id"]
        at = ids.argmax(-1) if eos == 2 else (ids == eos).int().argmax(-1)  # [B]
        pooled = x[torch.arange(B, device=ids.device), at]  # [B, H]
        if "text_projection.weight" in w:
            pooled = F.linear(pooled, w["text_projection.weight"])  # [B, P]
        return pooled

    def _embed_batch(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        eos = self._cfg["eos_token_id"]
        if eos != 2 and not (input_ids == eos).any(axis=1).all():
            raise CatsplitError(f"{self.model_dir / 'tokenizer.json'} gives texts without the end-of-text token "
                                f"(id {eos}, config.json eos_token_id) that CLIP pools at; use the model's own tokenizer")
        with torch.inference_mode():
            pooled = self._forward(torch.from_numpy(input_ids).to(self.device))
            return F.normalize(pooled, p=2, dim=1).cpu().numpy().astype(np.float32, copy=False)
