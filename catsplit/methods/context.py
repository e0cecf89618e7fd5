"""What a zero-shot method sees: the head's rows, the structure of its labels, the encoder."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from catsplit.methods.dictionary import ModifierDictionary
from catsplit.modifiers import RULE, encoder_texts
from catsplit.structure import Structure, infer_structure
from catsplit.text import TextEncoder

if TYPE_CHECKING:  # at run time a context exists only once a Head (and so torch) is loaded
    import torch

    from catsplit.head import Head


@dataclass(frozen=True, eq=False)
class SplitContext:
    head: Head
    encoder: TextEncoder | None
    coarse: str
    subs: list[str]
    sub_modifiers: list[str]  # [k] modifier text of each sub
    groups: Mapping[str, Sequence[str]] | None  # given groups (None: infer from the label text)
    modifiers: Mapping[str, str] | None  # given modifiers, overriding inference
    config: Any  # the method's own config (e.g. AlignmentConfig), None for a method without settings
    seed: int

    @property
    def normalise_modifiers(self) -> bool:
        """Whether modifier texts are rewritten before encoding (the method config's `normalise_modifiers`)."""
        return bool(getattr(self.config, "normalise_modifiers", False))

    def modifier_inputs(self, texts: Sequence[str]) -> list[str]:
        """Modifier texts as the encoder gets them (`catsplit.modifiers`: rewritten when the config says so)."""
        return encoder_texts(texts, self.normalise_modifiers)

    @cached_property
    def sub_inputs(self) -> list[str]:
        """[k] the subs' modifier texts as the encoder gets them."""
        return self.modifier_inputs(self.sub_modifiers)

    def modifier_record(self) -> dict:
        """The edit record's `details.modifier_text` when modifiers are normalised (else empty): the rule and
        the text each sub's modifier was encoded as."""
        if not self.normalise_modifiers:
            return {}
        return {"modifier_text": {"rule": RULE, "encoded": dict(zip(self.subs, self.sub_inputs))}}

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
    def matrix(self) -> np.ndarray | RowGather:
        """float32 rows [R, D] of every table, indexed with a list of rows (look rows up with `index`).

        A float32 flat head is used as it is (zero-copy); otherwise rows are gathered and converted
        to float32 only when asked for, so a float16 or hierarchical head is never copied whole.
        """
        import torch

        tables = self.head.tables
        if len(tables) == 1 and tables[0].weight.dtype == torch.float32:
            return tables[0].weight.numpy()
        return RowGather([t.weight for t in tables])

    @cached_property
    def index(self) -> dict[str, int]:
        """label -> row of `matrix` (gates and the coarse class included; methods never look them up)."""
        return {lab: i for i, lab in enumerate(lab for t in self.head.tables for lab in t.labels)}

    def rows_of(self, labels: list[str]) -> np.ndarray:
        return self.matrix[[self.index[lab] for lab in labels]]

    @cached_property
    def dictionary(self) -> ModifierDictionary:
        return ModifierDictionary(self.structure, self.matrix, self.index)


class RowGather:
    """The rows of several tables seen as one [R, D] float32 matrix; `gather[[i, j, ...]]` -> float32 [n, D].

    Only the requested rows are read and converted (in the tables' own dtype until the final cast),
    so the cost is that of the rows, not of the head.
    """

    def __init__(self, weights: list[torch.Tensor]):
        self._weights = weights
        self._starts = np.cumsum([0] + [w.shape[0] for w in weights])  # [T + 1]
        self.shape = (int(self._starts[-1]), int(weights[0].shape[1]))

    def __getitem__(self, rows: list[int]) -> np.ndarray:
        import torch

        idx = np.asarray(rows, dtype=np.int64).reshape(-1)
        out = np.empty((len(idx), self.shape[1]), np.float32)  # [n, D]
        table = np.searchsorted(self._starts, idx, side="right") - 1  # table of each row
        for ti in np.unique(table):
            sel = np.nonzero(table == ti)[0]
            local = torch.from_numpy(idx[sel] - self._starts[ti])
            out[sel] = self._weights[ti].index_select(0, local).to(torch.float32).numpy()
        return out
