"""The modifier dictionary: modifier vectors read off groups of existing fine labels.

For a group g with members y (>= 2), prototype v_g = mean_y w_y and modifier vector m_y = w_y - v_g.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from catsplit.structure import Structure


@dataclass(frozen=True)
class ModifierDictionary:
    groups: list[str]  # [N] group text of each entry
    labels: list[str]  # [N] label text
    modifiers: list[str]  # [N] modifier text
    vectors: np.ndarray  # [N, D] m_y = w_y - v_g, float32

    def __len__(self) -> int:
        return len(self.labels)


def group_prototypes(structure: Structure, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """v_g = mean of the member rows, for every group (single-member groups: the row itself)."""
    return {g: np.mean([rows[m] for m in members], axis=0) for g, members in structure.groups.items()}


def build_dictionary(structure: Structure, rows: dict[str, np.ndarray], prototypes: dict[str, np.ndarray]) -> ModifierDictionary:
    """Entries for every member of every group with >= 2 members."""
    groups, labels, modifiers, vectors = [], [], [], []
    for g, members in structure.multi_groups().items():
        for m in members:
            groups.append(g)
            labels.append(m)
            modifiers.append(structure.modifiers[m])
            vectors.append(rows[m] - prototypes[g])
    dim = next(iter(rows.values())).shape[0]
    vec = np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, dim), np.float32)
    return ModifierDictionary(groups=groups, labels=labels, modifiers=modifiers, vectors=vec)
