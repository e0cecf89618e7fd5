"""What a path holds, told from its bytes and its config.json, never from its suffix.

Files: a safetensors container (an 8-byte header length, then a JSON object), a PyTorch zip archive
(`torch.save`'s default since 1.6), or a pickle (`torch.save(..., _use_new_zipfile_serialization=False)`,
PySlowFast `.pyth` files, bare pickles). Folders: a Hugging Face transformers model (`config.json`
with `architectures` / `model_type`) or a timm model (`config.json` with `architecture` and
`pretrained_cfg` / `num_classes`, as `timm.models.push_to_hf_hub` writes it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from catsplit.errors import CatsplitError

SAFETENSORS = "safetensors"
TORCH_ZIP = "torch-zip"
PICKLE = "pickle"
UNKNOWN = "unknown"

HUGGINGFACE = "huggingface"
TIMM = "timm"

# suffixes of files that hold a model in some format (not a catsplit head file)
MODEL_SUFFIXES = {".pt", ".pth", ".bin", ".ckpt", ".tar", ".pyth", ".pkl", ".pickle"}

_ZIP_MAGIC = b"PK\x03\x04"


def file_kind(path: str | os.PathLike) -> str:
    """SAFETENSORS, TORCH_ZIP, PICKLE or UNKNOWN, from the first bytes of the file.

    Raises:
        CatsplitError: the file cannot be opened.
    """
    p = Path(path)
    try:
        with open(p, "rb") as f:
            head = f.read(16)
            size = os.fstat(f.fileno()).st_size
    except OSError as exc:
        raise CatsplitError(f"{p}: cannot open ({exc.strerror or exc})") from None
    return kind_of_bytes(head, size)


def kind_of_bytes(head: bytes, size: int) -> str:
    """The kind of a file that starts with `head` (its first 16 bytes or fewer) and has `size` bytes."""
    if head.startswith(_ZIP_MAGIC):
        return TORCH_ZIP
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:  # pickle PROTO opcode, protocol 2..5
        return PICKLE
    if len(head) >= 9 and head[8:9] == b"{":
        n = int.from_bytes(head[:8], "little")
        if 0 < n <= size - 8:
            return SAFETENSORS
    return UNKNOWN


def describe_kind(kind: str) -> str:
    """A kind in words, for error messages."""
    return {
        SAFETENSORS: "a safetensors file",
        TORCH_ZIP: "a PyTorch checkpoint (zip archive)",
        PICKLE: "a pickle (a legacy PyTorch checkpoint)",
    }.get(kind, "neither safetensors nor a PyTorch checkpoint")


def folder_kind(config: Mapping[str, Any]) -> str | None:
    """HUGGINGFACE or TIMM for the content of a model folder's `config.json`; None when it is neither."""
    if not isinstance(config, Mapping):
        return None
    if isinstance(config.get("architecture"), str) and ("pretrained_cfg" in config or "num_classes" in config):
        return TIMM
    if "architectures" in config or "model_type" in config:
        return HUGGINGFACE
    return None
