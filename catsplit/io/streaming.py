"""split_file: split a head file into a new one without holding two copies of the weight.

`split_file(src, dst, ...)` writes the bytes `load_head(src)` -> `split(...)` -> `save(dst)` would
write (spec/head-format.md §7.2). The source is checked as `load_head` checks it (same code, same
errors), but its tensors are views of a read-only memory map instead of copies. The method
computes the new rows from those views; the edited head is assembled with placeholder tensors
(no data) only to build the header; then the file is written in data order: unchanged byte
ranges of the source (every untouched tensor, the rows before and after the split row) are copied
file to file with `os.copy_file_range` (chunked `pread`/`pwrite` where that is not available),
and the new rows, biases and undo rows are written from memory.

Foreign inputs (PyTorch checkpoints, safetensors files without `catsplit.format`, `key=`,
`labels=`, a `torch.nn.Linear`) take the ordinary path: `load_head` + `split` + `save`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import torch

from catsplit.edit import apply_split, plan_split, split
from catsplit.head import Head
from catsplit.formats.detect import SAFETENSORS
from catsplit.formats.model import container_of
from catsplit.io.copying import RangeCopier, pwrite_all
from catsplit.io.headfile import head_tensors, write_head_file
from catsplit.io.keys import KEY_FORMAT
from catsplit.io.loading import load_from, load_head
from catsplit.io.safetensors import SafetensorsReader, tensor_order

if TYPE_CHECKING:
    from os import PathLike

    from catsplit.text import TextEncoder

def split_file(
    src: str | PathLike,
    dst: str | PathLike,
    text_encoder: TextEncoder | None,
    coarse: str,
    subs: Sequence[str],
    *,
    overwrite: bool = False,
    key: str | None = None,
    labels: Sequence[str] | str | PathLike | None = None,
    **split_options: Any,
) -> Path:
    """Split label `coarse` of the head file `src` into `subs` and write the edited head to `dst`.

    The file written is byte for byte the one `load_head(src, key=key, labels=labels)` ->
    `split(head, text_encoder, coarse, subs, **split_options)` -> `save(dst, overwrite=overwrite)`
    writes, and every error is the one that sequence raises. For a catsplit head file (no `key=`,
    no `labels=`) the weight is never copied into memory: the source is memory-mapped and checked
    (header, metadata, labels, every value finite), and unchanged bytes are copied file to file.
    Other inputs go through `load_head` + `split` + `save`.

    Args:
        src: the head file (catsplit `.safetensors`, or any input `load_head` takes with `key=` / `labels=`).
        dst: the file to write (atomically, as `Head.save`); may be `src` with `overwrite=True`.
        text_encoder, coarse, subs, split_options: as for `catsplit.split` (`method=`, `mode=`, ...).
        overwrite: replace an existing `dst`; without it an existing file is an error.
        key, labels: as for `load_head` (foreign inputs).
    Returns:
        `dst` as a Path.
    """
    with open_head_file(src, key=key, labels=labels) as source:
        source.split_to(dst, text_encoder, coarse, subs, overwrite=overwrite, **split_options)
    return Path(dst)


def open_head_file(
    src: Any, *, key: str | None = None, labels: Sequence[str] | str | PathLike | None = None,
) -> HeadSource:
    """A checked head file to split from (use as a context manager); memory-mapped when it is a catsplit file."""
    if (
        key is not None or labels is not None or not isinstance(src, (str, os.PathLike))
        or not Path(src).is_file() or container_of(Path(src)) != SAFETENSORS
    ):
        return HeadSource(load_head(src, key=key, labels=labels))
    path = Path(src)
    reader = SafetensorsReader(path, mapped=True)
    try:
        if KEY_FORMAT not in reader.metadata:  # a foreign safetensors file
            reader.close()
            return HeadSource(load_head(path))
        return HeadSource(load_from(path, reader, reader.metadata, None, None, None), reader)
    except BaseException:
        reader.close()
        raise


class HeadSource:
    """A loaded head, and when it is a view of a memory-mapped file, that file's reader."""

    def __init__(self, head: Head, reader: SafetensorsReader | None = None):
        self.head = head
        self.reader = reader
        self.copier = RangeCopier(reader.fileno(), reader.path) if reader is not None else None  # unchanged byte ranges

    def __enter__(self) -> HeadSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.head = None  # type: ignore[assignment] - drop the views before the mapping
        if self.reader is not None:
            self.reader.close()
            self.reader = None

    def split_to(
        self, dst: str | PathLike, text_encoder: TextEncoder | None, coarse: str, subs: Sequence[str], *,
        overwrite: bool = False, **split_options: Any,
    ) -> Mapping[str, Any]:
        """Split and write `dst`; returns the edit record (the new head's last history entry)."""
        if split_options.get("calibrate", "absent") is None:
            del split_options["calibrate"]  # the default: nothing to do after the split
        if self.reader is None or "calibrate" in split_options:
            # calibration rescales the new rows after the split: the loaded path (the head is still a view)
            new = split(self.head, text_encoder, coarse, subs, **split_options)
            new.save(dst, overwrite=overwrite)
            return new.latest_record()
        plan = plan_split(self.head, text_encoder, coarse, subs, **split_options)
        blocks = RowBlocks()
        new = apply_split(self.head, plan, concat=blocks)
        tensors, meta = head_tensors(new)
        write_head_file(
            dst, tensors, meta, overwrite=overwrite,
            write_data=lambda tmp, header, tensors: self._write(tmp, header, tensors, blocks),
        )
        return new.latest_record()

    def _write(self, tmp: Path, header: bytes, tensors: Mapping[str, torch.Tensor], blocks: RowBlocks) -> None:
        """Header, then each tensor in data order, block by block: from the source file or from memory."""
        assert self.reader is not None
        fd = os.open(tmp, os.O_WRONLY)
        try:
            pos = pwrite_all(fd, len(header).to_bytes(8, "little") + header, 0)
            for name in tensor_order(tensors):
                for part in blocks.parts(tensors[name]):
                    n = part.numel() * part.element_size()
                    if n == 0:
                        continue
                    offset = self.reader.file_offset(part)
                    if offset is None:
                        pwrite_all(fd, memoryview(part.contiguous().reshape(-1).view(torch.uint8).numpy()), pos)
                    else:
                        self.copier.copy(offset, n, fd, pos)
                    pos += n
        finally:
            os.close(fd)
        size = 8 + len(header) + sum(t.numel() * t.element_size() for t in tensors.values())
        if pos != size:  # the blocks disagree with the header: a bug, never a file to publish
            raise RuntimeError(f"split_file wrote {pos} bytes where the header describes {size}")


class RowBlocks:
    """`concat` for `apply_split` that copies nothing: a tensor of the result's shape and dtype on
    the `meta` device (no data), with the blocks it stands for remembered for the writer."""

    def __init__(self) -> None:
        self._joined: list[tuple[torch.Tensor, list[torch.Tensor]]] = []

    def __call__(self, parts: Sequence[torch.Tensor]) -> torch.Tensor:
        if any(p.dtype != parts[0].dtype or p.shape[1:] != parts[0].shape[1:] for p in parts):
            raise ValueError(f"row blocks must share dtype and row shape, got {[(p.dtype, tuple(p.shape)) for p in parts]}")
        rows = sum(p.shape[0] for p in parts)
        out = torch.empty((rows, *parts[0].shape[1:]), dtype=parts[0].dtype, device="meta")
        self._joined.append((out, list(parts)))
        return out

    def parts(self, t: torch.Tensor) -> list[torch.Tensor]:
        """The blocks `t` stands for, or `[t]` for a real tensor."""
        for out, parts in self._joined:
            if out is t:
                return parts
        if t.device.type == "meta":
            raise RuntimeError("a placeholder tensor reached the writer without its blocks")
        return [t]
