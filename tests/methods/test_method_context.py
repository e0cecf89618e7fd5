"""catsplit.methods.context: what a method sees — the head's rows without copying them, the other labels."""

import numpy as np
import torch

import catsplit
from catsplit.methods.context import RowGather, SplitContext
from catsplit.structure import sub_modifiers

COARSE = "Pushing something"


def _context(head, coarse, subs):
    return SplitContext(head=head, encoder=None, coarse=coarse, subs=subs, sub_modifiers=sub_modifiers(coarse, subs),
                        groups=None, modifiers=None, config=None, seed=0)


def test_the_context_sees_every_label_but_the_coarse_one(head_and_subs):
    head, subs = head_and_subs
    ctx = _context(head, COARSE, subs)
    assert ctx.labels == [lab for lab in head.labels if lab != COARSE]
    assert ctx.sub_modifiers[0] == "from left to right"
    np.testing.assert_array_equal(ctx.coarse_row, head.row(COARSE).numpy())
    assert COARSE not in {m for members in ctx.structure.groups.values() for m in members}
    some = ctx.labels[3:6]
    np.testing.assert_array_equal(ctx.rows_of(some), torch.stack([head.row(lab) for lab in some]).numpy())
    assert len(ctx.dictionary) == 20  # 4 verbs x 5 modifiers


def test_a_float32_flat_head_is_read_in_place(head_and_subs):
    head, subs = head_and_subs
    matrix = _context(head, COARSE, subs).matrix
    assert isinstance(matrix, np.ndarray) and np.shares_memory(matrix, head.weight.numpy())


def test_a_hierarchical_head_is_read_through_one_index(head_and_subs):
    head, subs = head_and_subs
    edited = catsplit.split(head, None, COARSE, subs, method="coarse", mode="hierarchical")
    ctx = _context(edited, subs[0], [subs[0] + " fast", subs[0] + " slowly"])
    assert isinstance(ctx.matrix, RowGather) and ctx.matrix.shape == (head.num_classes + len(subs), head.dim)
    wanted = [subs[1], "Lifting something up", subs[4]]
    np.testing.assert_array_equal(ctx.rows_of(wanted), torch.stack([edited.row(lab) for lab in wanted]).numpy())


def test_row_gather_converts_only_the_rows_asked_for_to_float32():
    weights = [torch.arange(6, dtype=torch.float16).reshape(3, 2), torch.arange(6, 10, dtype=torch.float16).reshape(2, 2)]
    gather = RowGather(weights)
    assert gather.shape == (5, 2)
    out = gather[[4, 0, 3, 0]]
    assert out.dtype == np.float32 and out.tolist() == [[8, 9], [0, 1], [6, 7], [0, 1]]
    assert gather[[]].shape == (0, 2)
