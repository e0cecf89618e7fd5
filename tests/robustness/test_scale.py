"""Larger heads at CI size: a split of a 20,000-row head, what loading and editing touch. No timings."""

import numpy as np
import pytest
import torch

import catsplit
from catsplit import Head, load_head
from catsplit.bench.tools.scale import COARSE, SUBS, HashedWordsEncoder, make_labels

ROWS, DIM = 20_000, 64


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().view(torch.uint8)


@pytest.fixture(scope="module")
def big_head():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(ROWS, DIM, generator=g)
    b = torch.randn(ROWS, generator=g)
    return Head(weight=w, bias=b, labels=make_labels(ROWS))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("method, mode", [("coarse", "flat"), ("retrieval", "flat"), ("retrieval", "hierarchical")])
def test_split_of_a_large_head_leaves_other_rows_bit_identical(tmp_path, big_head, dtype, method, mode):
    head = Head(weight=big_head.weight.to(dtype), bias=big_head.bias.to(dtype), labels=big_head.labels)
    path = tmp_path / "big.safetensors"
    head.save(path)
    loaded = load_head(path)
    assert loaded.equals(head)
    edited = catsplit.split(loaded, HashedWordsEncoder(), COARSE, SUBS, method=method, mode=mode)
    r = head.labels.index(COARSE)
    base = edited.tables[0]
    if mode == "flat":
        assert edited.labels == head.labels[:r] + head.labels[r + 1 :] + tuple(SUBS)
        assert torch.equal(_bits(base.weight[:r]), _bits(head.weight[:r]))
        assert torch.equal(_bits(base.weight[r : ROWS - 1]), _bits(head.weight[r + 1 :]))
        assert torch.equal(_bits(base.bias[: ROWS - 1]), _bits(torch.cat([head.bias[:r], head.bias[r + 1 :]])))
        new_rows = base.weight[ROWS - 1 :]
    else:
        assert base.weight is loaded.weight  # the base table is shared, not copied
        new_rows = edited.tables[1].weight
    assert new_rows.shape == (len(SUBS), DIM) and new_rows.dtype == dtype
    if method == "retrieval":  # w_c + a modifier vector: the subs differ from the coarse row and from each other
        assert len({bytes(_bits(row).numpy()) for row in new_rows}) == len(SUBS)
    out = tmp_path / "edited.safetensors"
    edited.save(out)
    again = load_head(out)
    assert again.equals(edited)
    assert catsplit.unsplit(again, COARSE).equals(head)


def test_loading_reads_only_the_tensors_it_needs(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    from catsplit.io.safetensors import SafetensorsReader

    p = tmp_path / "model.safetensors"
    save_file({"backbone.embed": torch.zeros(3000, 700, dtype=torch.int8), "backbone.norm": torch.ones(700),
               "head.fc.weight": torch.ones(3, 700), "head.fc.bias": torch.zeros(3)}, str(p))
    read = []
    real = SafetensorsReader.__getitem__

    def spy(self, name):
        read.append(name)
        return real(self, name)

    monkeypatch.setattr(SafetensorsReader, "__getitem__", spy)
    head = load_head(p, key="head.fc", labels=["a", "b", "c"])
    assert head.dim == 700 and sorted(read) == ["head.fc.bias", "head.fc.weight"]
    read.clear()
    # no key: head.fc is a known classifier name (issue 15), found from the header; still only its tensors are read
    assert load_head(p, labels=["a", "b", "c"]).equals(head) and sorted(read) == ["head.fc.bias", "head.fc.weight"]
    q = tmp_path / "unknown.safetensors"
    save_file({"backbone.embed": torch.zeros(3000, 700, dtype=torch.int8), "out_layer.weight": torch.ones(3, 700)}, str(q))
    read.clear()
    with pytest.raises(catsplit.CatsplitError, match="key="):
        load_head(q, labels=["a", "b", "c"])
    assert read == []  # listing the 2-D candidates reads shapes from the header only


def test_loaded_tensors_own_their_memory(tmp_path):
    """No memory map: the file can be replaced or truncated while the head is in use."""
    head = Head(weight=torch.randn(50, 8), labels=[f"c{i}" for i in range(50)])
    p = tmp_path / "h.safetensors"
    head.save(p)
    loaded = load_head(p)
    p.write_bytes(b"")  # truncate in place, as another program might
    assert loaded.equals(head)  # a mapped file would crash the interpreter here (SIGBUS)
    assert loaded.weight.untyped_storage().nbytes() == 50 * 8 * 4


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_methods_gather_rows_instead_of_converting_the_whole_head(big_head, dtype):
    from catsplit.config import SplitConfig
    from catsplit.methods.context import RowGather, SplitContext
    from catsplit.structure import sub_modifiers

    head = Head(weight=big_head.weight.to(dtype), labels=big_head.labels)
    ctx = SplitContext(head=head, encoder=None, coarse=COARSE, subs=SUBS, sub_modifiers=sub_modifiers(COARSE, SUBS),
                       groups=None, modifiers=None, config=SplitConfig(), seed=0)
    assert isinstance(ctx.matrix, RowGather) and ctx.matrix.shape == (ROWS, DIM)
    some = [5, 19_999, 0, 5]
    np.testing.assert_array_equal(ctx.matrix[some], head.weight[some].float().numpy())
    # a hierarchical head: rows of every table through one index
    edited = catsplit.split(head, None, COARSE, SUBS, method="coarse", mode="hierarchical")
    ctx2 = SplitContext(head=edited, encoder=None, coarse=SUBS[0], subs=["x a", "x b"], sub_modifiers=["a", "b"],
                        groups=None, modifiers=None, config=SplitConfig(), seed=0)
    rows = ctx2.rows_of([SUBS[1], head.labels[0], SUBS[3]])
    np.testing.assert_array_equal(rows, torch.stack([edited.row(SUBS[1]), edited.row(head.labels[0]), edited.row(SUBS[3])]).numpy())


def test_structure_and_dictionary_of_a_large_label_set():
    from catsplit.methods.dictionary import ModifierDictionary
    from catsplit.structure import infer_structure

    labels = [lab for lab in make_labels(ROWS) if lab != COARSE]
    s = infer_structure(labels)
    assert len(s.groups) == (ROWS - 1 + 9) // 10
    assert s.groups["action7 variant"][3] == "action7 variant 3" and s.modifiers["action7 variant 3"] == "3"
    matrix = np.random.default_rng(0).standard_normal((len(labels), 4)).astype(np.float32)
    d = ModifierDictionary(s, matrix, {lab: i for i, lab in enumerate(labels)})
    assert len(d) == len(labels) - sum(len(m) == 1 for m in s.groups.values())
    assert np.array_equal(d.vectors_of([0, len(d) - 1]), d.vectors[[0, len(d) - 1]])
