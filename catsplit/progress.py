"""A tiny stderr progress bar (no third-party dependency).

It draws only when enabled and stderr is a TTY, so logs and CI output stay clean.
"""
from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, Optional, TextIO, TypeVar

T = TypeVar("T")


class Progress:
    """A minimal progress bar: ``with Progress(total, "desc") as bar: bar.update(k)``.

    Args:
        total: number of steps expected (0 or None: unknown, shows a counter only).
        desc: short text shown before the bar.
        enabled: False silences it entirely.
        stream: where to draw (default ``sys.stderr``); nothing is drawn unless it is a TTY.
        min_interval: seconds between redraws.
    """

    def __init__(self, total: Optional[int], desc: str = "", enabled: bool = True,
                 stream: Optional[TextIO] = None, min_interval: float = 0.2) -> None:
        self.total = int(total) if total else 0
        self.desc = desc
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.active = bool(enabled) and callable(isatty) and bool(isatty())
        self.min_interval = min_interval
        self.n = 0
        self.postfix = ""
        self._start = time.monotonic()
        self._last = 0.0

    def update(self, k: int = 1, postfix: Optional[str] = None) -> None:
        """Advance by ``k`` steps; ``postfix`` replaces the text shown after the bar."""
        self.n += k
        if postfix is not None:
            self.postfix = postfix
        now = time.monotonic()
        if self.active and (now - self._last >= self.min_interval or (self.total and self.n >= self.total)):
            self._last = now
            self._draw(now)

    def set_postfix(self, postfix: str) -> None:
        """Replace the text shown after the bar (redrawn at the next update)."""
        self.postfix = postfix

    def _draw(self, now: float) -> None:
        elapsed = now - self._start
        if self.total:
            frac = min(1.0, self.n / self.total)
            width = 24
            fill = int(round(frac * width))
            eta = elapsed / frac - elapsed if frac > 0 else 0.0
            line = (f"\r{self.desc} [{'#' * fill}{'.' * (width - fill)}] {self.n}/{self.total} "
                    f"{elapsed:5.1f}s<{eta:5.1f}s {self.postfix}")
        else:
            line = f"\r{self.desc} {self.n} {elapsed:5.1f}s {self.postfix}"
        self.stream.write(line[:200].ljust(80))
        self.stream.flush()

    def close(self) -> None:
        """Finish the line (only if something was drawn)."""
        if self.active:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
            self.active = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(iterable: Iterable[T], total: Optional[int] = None, desc: str = "",
             enabled: bool = True) -> Iterator[T]:
    """Wrap an iterable with a :class:`Progress` bar.

    Args:
        iterable: the items to yield.
        total: step count (default ``len(iterable)`` when it has one).
        desc: text before the bar.
        enabled: False: yield the items and draw nothing.

    Returns:
        An iterator over the same items.
    """
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with Progress(total, desc, enabled) as bar:
        for item in iterable:
            yield item
            bar.update(1)
