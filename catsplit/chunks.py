"""Unlabelled clip features read in chunks: an array, a memory-mapped `.npy`, or a re-iterable of `[n, D]` chunks.

`refine`, `relabel` and `calibrate` pass over the clips several times and keep only sufficient statistics,
so memory does not grow with the number of clips: each pass reads at most `chunk` rows at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Callable

import numpy as np
import torch

from catsplit.checks import as_tensor, check_finite
from catsplit.errors import CatsplitError

CHUNK = 65_536  # rows per chunk: 64 MB of float32 at D = 256


class ClipChunks:
    """Clips [N, D] that can be read several times, chunk by chunk, as float32 tensors.

    A chunk is valid until the next one is read (a read-only memory map is copied into one reused buffer).

    Args:
        clips: a 2-D numpy array (a memory map too: `np.load(path, mmap_mode="r")`) or torch tensor [N, D];
            a sequence (list, tuple) of such chunks; or a callable that returns a fresh iterator of chunks
            each time it is called. A one-shot iterator (a generator) is refused: it could be read only once.
        dim: the head's D.
        what: the argument's name, for messages.
        chunk: rows per chunk read from an array.
    """

    def __init__(self, clips: Any, dim: int, what: str = "clips", chunk: int = CHUNK) -> None:
        self.dim, self.what, self.chunk = dim, what, chunk
        self.count: int | None = None  # rows per pass, known after the first (checked on every later one)
        self.checked = False  # the first full pass checks every chunk for NaN / inf
        if clips is None:
            raise CatsplitError(f"{what} is None; pass an array [N, {dim}] of clip features")
        if isinstance(clips, (np.ndarray, torch.Tensor)) or (hasattr(clips, "shape") and hasattr(clips, "__array__")):
            shape = tuple(clips.shape)
            if len(shape) != 2 or shape[1] != dim:
                raise CatsplitError(f"{what} must have shape [N, {dim}] (the head's D), got {shape}")
            if shape[0] == 0:
                raise CatsplitError(f"{what} is empty (0 clips); pass the clips' features [N, {dim}]")
            self.array, self.source = clips, None
            self.count = shape[0]
            return
        self.array = None
        if isinstance(clips, (str, bytes)) or isinstance(clips, Iterator):
            kind = "a file name" if isinstance(clips, (str, bytes)) else "a one-shot iterator (a generator)"
            raise CatsplitError(
                f"{what} is {kind}; it must be readable several times: pass an array (np.load(path, mmap_mode='r') "
                "for a large .npy), a list of [n, D] chunks, or a function that returns a new iterator of chunks"
            )
        if callable(clips):
            self.source: Callable[[], Iterable[Any]] | None = clips
        elif isinstance(clips, Iterable):
            self.source = lambda: iter(clips)
        else:
            raise CatsplitError(f"{what} must be an array [N, {dim}] or a re-iterable of chunks, got {type(clips).__name__}")

    def __iter__(self) -> Iterator[torch.Tensor]:
        """One pass: float32 chunks [n, D]; the first pass checks shapes and values, later ones the count."""
        seen = 0
        for part in self._parts():
            x = as_tensor(part, self.what)
            if x.ndim != 2 or x.shape[1] != self.dim:
                raise CatsplitError(f"{self.what}: a chunk has shape {tuple(x.shape)}; every chunk must be [n, {self.dim}]")
            x = x.to(torch.float32)
            if not self.checked:
                check_finite(x, f"{self.what} (rows from {seen})")
            seen += x.shape[0]
            if x.shape[0]:
                yield x
        if seen == 0:
            raise CatsplitError(f"{self.what} is empty (0 clips); pass the clips' features [N, {self.dim}]")
        if self.count is not None and seen != self.count:
            raise CatsplitError(
                f"{self.what} gave {seen} rows on this pass and {self.count} before; a function of chunks must "
                "return the same clips every time it is called"
            )
        self.count, self.checked = seen, True

    def _parts(self) -> Iterator[Any]:
        if self.array is not None:
            buffer: np.ndarray | None = None
            for start in range(0, self.array.shape[0], self.chunk):
                part = self.array[start : start + self.chunk]
                if not isinstance(part, torch.Tensor):
                    part = np.asarray(part)
                    if not part.flags.writeable:
                        # a read-only memory map: copied (torch wants writable memory) into one buffer reused by
                        # every chunk of the pass, which spares a fresh allocation's page faults per chunk
                        if buffer is None or buffer.dtype != part.dtype:
                            buffer = np.empty((min(self.chunk, self.array.shape[0]), part.shape[1]), part.dtype)
                        np.copyto(buffer[: part.shape[0]], part)
                        part = buffer[: part.shape[0]]
                yield part
            return
        got = self.source()  # type: ignore[misc]
        if isinstance(got, (np.ndarray, torch.Tensor)):  # a function returning one array
            got = [got]
        try:
            parts = iter(got)
        except TypeError:
            raise CatsplitError(f"{self.what}: the function must return an iterator of [n, {self.dim}] chunks, got {type(got).__name__}") from None
        yield from parts
