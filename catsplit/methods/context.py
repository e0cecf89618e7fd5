"""What a zero-shot method sees: the head's rows, the structure of its labels, the encoder."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from catsplit.config import SplitConfig
from catsplit.head import Head
from catsplit.methods.dictionary import ModifierDictionary, build_dictionary, group_prototypes
from catsplit.structure import Structure
from catsplit.text import TextEncoder


@dataclass
class SplitContext:
    head: Head
    encoder: TextEncoder | None
    coarse: str
    subs: list[str]
    sub_modifiers: list[str]  # [k] modifier text of each sub
    structure: Structure  # groups/modifiers of the existing labels, the coarse class left out
    config: SplitConfig
    seed: int
    details: dict[str, Any] = field(default_factory=dict)  # what the method reports into the edit record

    @cached_property
    def coarse_row(self) -> np.ndarray:
        return self.head.row(self.coarse).numpy()  # [D] float32

    @cached_property
    def rows(self) -> dict[str, np.ndarray]:
        """label -> float32 row, for every existing label but the coarse one."""
        out: dict[str, np.ndarray] = {}
        gates = set(self.head.gates)
        for t in self.head.tables:
            w = t.weight.float().numpy()  # [C_t, D]
            for i, lab in enumerate(t.labels):
                if lab not in gates and lab != self.coarse:
                    out[lab] = w[i]
        return out

    @cached_property
    def prototypes(self) -> dict[str, np.ndarray]:
        return group_prototypes(self.structure, self.rows)

    @cached_property
    def dictionary(self) -> ModifierDictionary:
        return build_dictionary(self.structure, self.rows, self.prototypes)
