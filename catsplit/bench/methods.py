"""The rows of the benchmark table, by name."""

from __future__ import annotations

from catsplit.bench.protocol import Method, finetuned, random_rows, zero_shot
from catsplit.errors import CatsplitError

# (name, mode) in table order; "oracle" = new rows trained on all training clips of the subs
ZERO_SHOT = [("coarse", "flat"), ("text", "flat"), ("retrieval", "flat"), ("alignment", "flat"), ("alignment", "hierarchical")]
DEFAULT = ZERO_SHOT + [("oracle", "flat")]


def build(name: str, mode: str, encoder) -> Method:
    """A Method from its table name: coarse, text, retrieval, alignment, oracle,
    finetune-<k>shot-<random|coarse|alignment>, finetune-full."""
    if name in ("coarse", "text", "retrieval", "alignment"):
        return zero_shot(name, mode, encoder)
    if name == "oracle" or name == "finetune-full":
        m = finetuned(name, zero_shot("coarse", mode, encoder), shots=None)
        m.deterministic = True
        return m
    if name.startswith("finetune-") and "shot-" in name:
        shots_part, init = name[len("finetune-"):].split("shot-", 1)
        if not shots_part.isdigit() or init not in ("random", "coarse", "alignment"):
            raise CatsplitError(f"bad method {name!r}; use finetune-<k>shot-<random|coarse|alignment>")
        start = random_rows() if init == "random" else zero_shot(init, mode, encoder)
        return finetuned(name, start, shots=int(shots_part))
    raise CatsplitError(
        f"unknown benchmark method {name!r}; choose coarse, text, retrieval, alignment, oracle, "
        "finetune-<k>shot-<random|coarse|alignment>, finetune-full"
    )


def parse(spec: str) -> tuple[str, str]:
    """'alignment' -> ('alignment', 'flat'); 'alignment:hierarchical' -> ('alignment', 'hierarchical')."""
    name, _, mode = spec.partition(":")
    mode = mode or "flat"
    if mode not in ("flat", "hierarchical"):
        raise CatsplitError(f"bad mode in {spec!r}; use NAME or NAME:hierarchical")
    return name, mode
