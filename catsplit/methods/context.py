"""What a zero-shot method sees: the head's rows, the structure of its labels, the encoder."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Mapping, Sequence

import numpy as np

from catsplit.config import SplitConfig
from catsplit.head import Head
from catsplit.methods.dictionary import ModifierDictionary
from catsplit.structure import Structure, infer_structure
from catsplit.text import TextEncoder


@dataclass
class SplitContext:
    head: Head
    encoder: TextEncoder | None
    coarse: str
    subs: list[str]
    sub_modifiers: list[str]  # [k] modifier text of each sub
    groups: Mapping[str, Sequence[str]] | None  # given groups (None: infer from the label text)
    modifiers: Mapping[str, str] | None  # given modifiers, overriding inference
    config: SplitConfig
    seed: int
    details: dict[str, Any] = field(default_factory=dict)  # what the method reports into the edit record

    @cached_property
    def coarse_row(self) -> np.ndarray:
        return self.head.row(self.coarse).numpy()  # [D] float32

    @cached_property
    def labels(self) -> list[str]:
        """Every existing output label but the coarse one."""
        return [lab for lab in self.head.labels if lab != self.coarse]

    @cached_property
    def structure(self) -> Structure:
        """Groups and modifiers of the existing labels, the coarse class left out (only methods that need it pay)."""
        return infer_structure(self.labels, self.groups, self.modifiers)

    @cached_property
    def matrix(self) -> np.ndarray:
        """float32 rows [R, D] of every table (zero-copy for a float32 flat head); look rows up with `index`."""
        parts = [t.weight.float().numpy() for t in self.head.tables]
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    @cached_property
    def index(self) -> dict[str, int]:
        """label -> row of `matrix` (gates and the coarse class included; methods never look them up)."""
        return {lab: i for i, lab in enumerate(lab for t in self.head.tables for lab in t.labels)}

    def rows_of(self, labels: list[str]) -> np.ndarray:
        return self.matrix[[self.index[lab] for lab in labels]]

    @cached_property
    def dictionary(self) -> ModifierDictionary:
        return ModifierDictionary(self.structure, self.matrix, self.index)
