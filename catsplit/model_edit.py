"""An edited head put into a live torch model: `apply` returns a copy of the model with its classifier swapped.

The classifier layer is named by `key=` or found: the `torch.nn.Linear` whose weights are the rows the
head had before its edits (`unsplit` of every recorded split), else the only one of that shape. The
model itself is never modified (the copy is a `copy.deepcopy`); on a Hugging Face transformers model
the copy's `config.id2label` / `label2id` (and the model's `num_labels`) follow the new labels.
"""

from __future__ import annotations

import copy
import difflib
from typing import Any

import torch

from catsplit.edit import unsplit
from catsplit.errors import CatsplitError, warn_caller
from catsplit.formats.huggingface import label_config
from catsplit.head import Head


def apply(model: torch.nn.Module, edited: Head, key: str | None = None) -> torch.nn.Module:
    """A new model: `model` with its classifier layer replaced by `edited.to_module()`; `model` is untouched.

    Args:
        model: a torch model whose last linear layer `edited` was read from (e.g. a Hugging Face
            `...ForVideoClassification`, a timm or PyTorchVideo model).
        edited: the edited head (flat: an `nn.Linear` in the layer's dtype; hierarchical: a `GatedHead`
            returning log-probabilities, which softmax and cross-entropy read as logits).
        key: the layer's name in `model` (`"classifier"`, `"head.fc"`; a trailing `.weight` is dropped);
            None finds it (see the module docstring) and names the candidates when several fit.
    Returns:
        the edited copy, on the layer's device, in eval or train mode as the layer was.
    """
    if not isinstance(model, torch.nn.Module):
        raise CatsplitError(f"apply needs a torch.nn.Module model, got {type(model).__name__}")
    if not isinstance(edited, Head):
        raise CatsplitError(f"apply needs a catsplit.Head, got {type(edited).__name__}; use catsplit.split(...) or load_head")
    name = find_layer(model, edited, key)
    old = model.get_submodule(name)
    module = edited.to_module()
    if isinstance(module, torch.nn.Linear):
        module = module.to(dtype=old.weight.dtype)  # the model's dtype: its other layers feed this one
    module = module.to(device=old.weight.device).train(old.training)
    for p in module.parameters():
        p.requires_grad_(old.weight.requires_grad)
    if name == "":  # the model is the layer itself
        return module
    new = copy.deepcopy(model)
    parent, _, attr = name.rpartition(".")
    setattr(new.get_submodule(parent), attr, module)
    _update_labels(new, edited, old.out_features)
    return new


def find_layer(model: torch.nn.Module, head: Head, key: str | None = None) -> str:
    """The name of the `torch.nn.Linear` in `model` that `head` was read from.

    Args:
        model: the torch model.
        head: the head, edited or not.
        key: the layer's name; None finds it by the head's original rows, else by their shape.
    Returns:
        the layer's dotted name in `model.named_modules()`.
    """
    linears = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    shown = ", ".join(f"{n!r} [{m.out_features}, {m.in_features}]" for n, m in list(linears.items())[-8:]) or "none"
    if key is not None:
        if not isinstance(key, str) or not key:
            raise CatsplitError(f"key must be a layer name such as 'classifier', got {key!r}")
        key = key.removesuffix(".weight")
        if key not in linears:
            close = difflib.get_close_matches(key, list(linears), n=3, cutoff=0.4)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else f"; linear layers: {shown}"
            raise CatsplitError(f"the model has no linear layer named {key!r}{hint}")
        if linears[key].in_features != head.dim:
            raise CatsplitError(
                f"layer {key!r} takes {linears[key].in_features} features, the head {head.dim}; name the layer the head was read from"
            )
        return key
    original = original_head(head)
    n_classes = original.num_classes if original is not None else original_classes(head)
    shaped = [n for n, m in linears.items() if (m.out_features, m.in_features) == (n_classes, head.dim)]
    same = [n for n in shaped if original is not None and same_rows(linears[n], original)]
    if len(same) == 1:
        return same[0]
    if len(same) > 1 or len(shaped) > 1:
        names = ", ".join(map(repr, same or shaped))
        raise CatsplitError(
            f"several layers of the model could hold the head ({names}: [{n_classes}, {head.dim}]"
            f"{', the same weights' if same else ''}); pass key=NAME"
        )
    if not shaped:
        raise CatsplitError(
            f"no linear layer of the model has the head's original shape [{n_classes}, {head.dim}]; linear layers: "
            f"{shown}. Pass key=NAME, or apply the head to the model it was read from"
        )
    if original is not None:
        warn_caller(
            f"catsplit.apply: layer {shaped[0]!r} has the head's shape but not its original weights; replacing it anyway "
            "(pass key= to say so and silence this)",
            UserWarning,
        )
    return shaped[0]


def original_head(head: Head) -> Head | None:
    """`head` with every recorded split undone, or None when a record cannot be undone (e.g. a head read from ONNX)."""
    for rec in reversed(head.history):
        if rec.get("op") != "split":
            return None
        try:
            head = unsplit(head, rec["coarse"])
        except CatsplitError:
            return None
    return head


def original_classes(head: Head) -> int:
    """How many labels the head had before its recorded splits: each split of one label into k added k - 1."""
    return head.num_classes - sum(len(rec.get("subs", ())) - 1 for rec in head.history if rec.get("op") == "split")


def same_rows(layer: torch.nn.Linear, head: Head) -> bool:
    """Whether the layer holds the head's (flat) rows and bias, value for value."""
    if head.is_hierarchical or (layer.bias is None) != (head.bias is None):
        return False
    with torch.no_grad():
        if not torch.equal(layer.weight.detach().cpu().double(), head.weight.double()):
            return False
        return layer.bias is None or torch.equal(layer.bias.detach().cpu().double(), head.bias.double())


def _update_labels(model: torch.nn.Module, head: Head, old_classes: int) -> None:
    """A Hugging Face model's label fields: `config.id2label`, `config.label2id`, and the model's `num_labels`."""
    config = getattr(model, "config", None)
    if config is None or not isinstance(getattr(config, "id2label", None), dict):
        return
    fields = label_config(head.labels)
    # Both maps: transformers renames every label LABEL_i when only num_labels changes. In memory the keys are ints.
    config.id2label = {int(i): lab for i, lab in fields["id2label"].items()}
    config.label2id = dict(fields["label2id"])
    if getattr(model, "num_labels", None) == old_classes:  # e.g. VideoMAEForVideoClassification reads it in its loss
        model.num_labels = head.num_classes
