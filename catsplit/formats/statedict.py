"""Finding the classifier layer among a state dict's tensor names.

Names are the flattened ones (`state_dict.module.head.fc.weight`). Wrapper prefixes that training
code adds (`module.` from DataParallel, `_orig_mod.` from torch.compile, `model.`, `state_dict.`,
`state_dict_ema.`, `model_state.` ...) are stripped before a name is compared with the layer names
of known model families; training state (`optimizer`, `message_hub`, ...) is never a candidate.

With `key=` the layer is looked up by name (with the wrapper prefixes tried in turn). Without it the
candidates are ranked: a known classifier name first (in the order of `KNOWN_HEADS`), then a row
count equal to the number of labels. When the best two tie, the error names the best candidates.
Only names and shapes are read here, never tensor data.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, Sequence

from catsplit.errors import CatsplitError

# wrapper prefixes, stripped repeatedly from the front of a name
WRAPPERS = (
    "module.", "_orig_mod.", "model.", "state_dict.", "state_dict_ema.", "model_state.", "model_ema.",
    "ema_state_dict.", "ema.", "net.", "network.",
)
# the prefixes `key=` is tried with, in this order (the first five are catsplit 0.1.0's)
KEY_PREFIXES = (
    "state_dict.", "model.", "module.", "state_dict.module.", "model.module.",
    "state_dict_ema.", "state_dict_ema.module.", "model_state.", "model_state.module.", "_orig_mod.",
    "model._orig_mod.", "module._orig_mod.", "model_ema.", "model_ema.module.",
)
# first parts of names that hold training state, not the model
TRAINING_STATE = {
    "optimizer", "optimizer_state", "optimizer_state_dict", "optim", "lr_scheduler", "scheduler", "schedulers",
    "param_schedulers", "scaler", "amp", "grad_scaler", "message_hub", "loss_scaler", "catsplit", "meta",
}
# classifier layer names of common model families (after wrapper stripping), most specific first
KNOWN_HEADS: tuple[tuple[str, str], ...] = (
    (r"cls_head\.fc_cls", "mmaction2 recognizers"),
    (r"cls_head\.fc2", "mmaction2 X3D head"),
    (r"head\.projection", "PySlowFast"),
    (r"blocks\.[0-9]+\.proj", "PyTorchVideo"),
    (r"classifier", "Hugging Face transformers, timm"),
    (r"head\.fc", "timm"),
    (r"head", "timm"),
    (r"head\.proj", "PyTorchVideo MViT"),
    (r"fc", "ResNet-style (torchvision, timm)"),
    (r"head\.1", "torchvision video transformers"),
    (r"last_linear", "pretrainedmodels"),
    (r"cls_head\.fc", "mmaction2"),
    (r"fc_cls", "mmaction2 heads"),
    (r"logits", "various"),
)
_KNOWN = [(re.compile(pattern), family) for pattern, family in KNOWN_HEADS]


def strip_wrappers(name: str) -> str:
    """`name` without the wrapper prefixes at its front (`module.model.fc` -> `fc`)."""
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPERS:
            if name.startswith(prefix) and len(name) > len(prefix):
                name, changed = name[len(prefix):], True
    return name


def is_training_state(name: str) -> bool:
    return name.split(".", 1)[0] in TRAINING_STATE


def known_rank(stem: str) -> int | None:
    """Index in KNOWN_HEADS of the layer name `stem` (wrappers stripped), or None when it is not a known name."""
    for i, (pattern, _) in enumerate(_KNOWN):
        if pattern.fullmatch(stem):
            return i
    return None


def weight_stem(name: str) -> str | None:
    """`head.fc` for `head.fc.weight`; None for names that are not a layer's weight."""
    return name[: -len(".weight")] if name.endswith(".weight") else None


def layer_by_key(shapes: Mapping[str, Sequence[int]], key: str) -> str | None:
    """The name of the 2-D weight tensor that `key` names (a layer or a tensor, wrappers tolerated), or None."""
    names = [key, f"{key}.weight"]
    for prefix in KEY_PREFIXES:
        names += [prefix + key + ".weight", prefix + key]
    for name in names:
        if name in shapes and len(shapes[name]) == 2:
            return name
    return None


def rank_layers(
    path: Path, shapes: Mapping[str, Sequence[int]], n_labels: int | None, *, prefer: Sequence[str] = (),
) -> str | None:
    """The weight tensor of the classifier among `shapes` (name -> shape), found without a key.

    Args:
        path: the file, for error messages.
        shapes: every tensor's shape, by flattened name.
        n_labels: the number of labels, when known: a layer with that many rows ranks first among equals.
        prefer: layer names (wrappers stripped) the model's own format names, ranked before KNOWN_HEADS.
    Returns:
        the chosen weight tensor's name, or None when no tensor has a known classifier name.
    Raises:
        CatsplitError naming the best candidates when two rank equally.
    """
    scored = []
    for name, shape in shapes.items():
        stem = weight_stem(name)
        if stem is None or len(shape) != 2 or is_training_state(name):
            continue
        plain = strip_wrappers(stem)
        rank = prefer.index(plain) - len(prefer) if plain in prefer else known_rank(plain)
        if rank is None:
            continue
        rows_fit = n_labels is not None and shape[0] == n_labels
        scored.append(((not rows_fit, rank), name, plain, tuple(shape)))
    if not scored:
        return None
    scored.sort(key=lambda s: s[0])
    best = [s for s in scored if s[0] == scored[0][0]]
    if len(best) > 1:
        shown = ", ".join(f"{s[1][: -len('.weight')]!r} {list(s[3])}" for s in best[:5])
        fit = f" with {n_labels} rows (one per label)" if n_labels is not None and not scored[0][0][0] else ""
        raise CatsplitError(
            f"{path}: several layers could be the classifier{fit}: {shown}; name one with key=... (CLI: --key)"
        )
    return best[0][1]


def candidates_text(shapes: Mapping[str, Sequence[int]], n_labels: int | None) -> str:
    """The 2-D tensors of a state dict, those with one row per label first (at most 10), for an error message."""
    two_d = [name for name, shape in shapes.items() if len(shape) == 2 and not is_training_state(name)]
    if n_labels is not None:
        fit = [name for name in two_d if shapes[name][0] == n_labels]
        if fit:
            return f"2-D tensors with {n_labels} rows (one per label): {fit[:10]}"
    return f"2-D tensors found: {two_d[:10]}"
