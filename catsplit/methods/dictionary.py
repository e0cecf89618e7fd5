"""The modifier dictionary: modifier vectors read off groups of existing fine labels.

For a group g with members y (>= 2), prototype v_g = mean_y w_y and modifier vector m_y = w_y - v_g.
Vectors are computed on demand: retrieval needs only the k matched entries (and their groups'
prototypes), alignment all of them.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from catsplit.structure import Structure


class ModifierDictionary:
    """Entries for every member of every group with >= 2 members.

    Args:
        structure: groups and modifiers of the existing labels.
        matrix: float32 rows [C, D] of those labels: an array, or anything that gathers float32 rows
            for a list of row numbers (`SplitContext.matrix`'s `RowGather`, which converts only
            the rows asked for). Every method here reads only the rows of its groups, so the cost
            grows linearly with the number of labels.
        index: label -> row of `matrix`.
    """

    def __init__(self, structure: Structure, matrix: np.ndarray, index: dict[str, int]):
        multi = structure.multi_groups()
        self.group_names: list[str] = list(multi)  # [G]
        self.labels: list[str] = [m for g in self.group_names for m in multi[g]]  # [N]
        self.groups: list[str] = [g for g in self.group_names for _ in multi[g]]  # [N] group of each entry
        self.modifiers: list[str] = [structure.modifiers[m] for m in self.labels]  # [N]
        self._members = multi
        self._matrix = matrix
        self._index = index

    def __len__(self) -> int:
        return len(self.labels)

    def prototype(self, group: str) -> np.ndarray:
        """v_g -> [D]."""
        rows = self._matrix[[self._index[m] for m in self._members[group]]]
        return (rows.sum(axis=0) / len(rows)).astype(np.float32)  # as in `prototypes`, bit for bit

    def vectors_of(self, entries: list[int]) -> np.ndarray:
        """m_y of the given entries -> [len(entries), D]."""
        protos = {g: self.prototype(g) for g in {self.groups[e] for e in entries}}
        rows = self._matrix[[self._index[self.labels[e]] for e in entries]]
        return rows - np.stack([protos[self.groups[e]] for e in entries]) if entries else rows

    @cached_property
    def member_rows(self) -> np.ndarray:
        """w_y of every entry -> [N, D]."""
        return self._matrix[[self._index[m] for m in self.labels]]

    @cached_property
    def prototypes(self) -> np.ndarray:
        """v_g of every group with >= 2 members -> [G, D]."""
        if not self.labels:
            return np.zeros((0, self._matrix.shape[1]), np.float32)
        return np.stack([self.prototype(g) for g in self.group_names])

    @cached_property
    def vectors(self) -> np.ndarray:
        """m_y of every entry -> [N, D]."""
        out = self.member_rows.copy()
        start = 0
        for g, v in zip(self.group_names, self.prototypes):
            n = len(self._members[g])
            out[start : start + n] -= v
            start += n
        return out
