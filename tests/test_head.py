"""catsplit.head: Head and Table — rows, labels, logits and probabilities, evolve, the hierarchy of hierarchical splits."""

import numpy as np
import pytest
import torch

import catsplit
from catsplit import CatsplitError, Head

COARSE = "Pushing something"


def test_head_from_numpy_and_torch_agree():
    w = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    b = np.array([0.1, -0.2, 0.3], np.float32)
    h1 = Head(weight=w, bias=b, labels=["a", "b", "c"])
    h2 = Head(weight=torch.from_numpy(w), bias=torch.from_numpy(b), labels=["a", "b", "c"])
    assert h1.equals(h2)
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(h1.logits(x), x @ w.T + b, rtol=1e-5, atol=1e-6)
    assert isinstance(h1.logits(torch.from_numpy(x)), torch.Tensor)
    assert list(h1.predict(x)) == [["a", "b", "c"][i] for i in np.argmax(x @ w.T + b, axis=1)]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_head_keeps_dtype(dtype):
    h = Head(weight=torch.ones(2, 3, dtype=dtype), labels=["a", "b"])
    assert h.dtype == dtype and h.bias is None
    assert h.logits(np.ones((1, 3), np.float32)).dtype == np.float32


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(weight=np.ones((2, 3)), labels=["a"]), "2 weight rows but 1 labels"),
        (dict(weight=np.ones(3), labels=["a"]), "must be 2-D"),
        (dict(weight=np.ones((2, 3)), labels=["a", "a"]), "'a' and 'a'"),
        (dict(weight=np.ones((2, 3)), labels=["Pushing", "pushing "]), "collide"),
        (dict(weight=np.ones((2, 3)), labels=["a", "  "]), "non-empty"),
        (dict(weight=np.ones((2, 3)), bias=np.ones(3), labels=["a", "b"]), "bias must have shape [2]"),
        (dict(weight=np.array([[1.0, np.nan], [0, 0]]), labels=["a", "b"]), "row(s) 0 ('a')"),
        (dict(weight=np.array([[1.0, 0], [np.inf, 0]]), labels=["a", "b"]), "row(s) 1 ('b')"),
        (dict(weight=np.ones((2, 2)), bias=np.array([0, np.nan]), labels=["a", "b"]), "bias holds NaN"),
        (dict(weight=np.array([["x", "y"]]), labels=["a"]), "must hold numbers"),
        (dict(weight=np.ones((2, 2)), labels=None), "needs labels"),
    ],
)
def test_head_rejects_bad_input(kwargs, message):
    with pytest.raises(CatsplitError) as err:
        Head(**kwargs)
    assert message in str(err.value)


def test_features_of_wrong_width_are_rejected():
    h = Head(weight=np.ones((2, 3)), labels=["a", "b"])
    with pytest.raises(CatsplitError, match=r"shape \[N, 3\]"):
        h.logits(np.ones((4, 5)))


def test_groups_must_name_existing_labels():
    with pytest.raises(CatsplitError, match="not in the head"):
        Head(weight=np.ones((2, 2)), labels=["a", "b"], groups={"g": ["a", "zzz"]})


def test_the_labels_one_got_cannot_change_the_head(head16_and_subs):
    head, _ = head16_and_subs
    x = np.random.default_rng(0).standard_normal((20, 16)).astype(np.float32)
    before = head.predict(x)
    with pytest.raises(AttributeError):
        head.labels.remove(COARSE)  # a tuple: copy it (list(head.labels)) to change it
    others = list(head.labels)  # "the labels without the class I split"
    others.remove(COARSE)
    others.append("junk")
    assert COARSE in head.labels and "junk" not in head.labels
    assert head.num_classes == head.weight.shape[0] == len(head.labels)
    assert list(head.predict(x)) == list(before)
    # a tuple for users: equality, slicing, index, concatenation
    assert isinstance(head.labels, tuple) and head.labels == head.tables[0].labels
    assert head.labels[:2] + ("z",) == (*head.tables[0].labels[:2], "z")
    assert head.labels.index(COARSE) == head.tables[0].labels.index(COARSE)


def test_evolve_and_replace_still_work(head16_and_subs):
    import dataclasses

    head, _ = head16_and_subs
    h = dataclasses.replace(head, metadata={"a": "b"})
    assert h.metadata == {"a": "b"} and h.labels == head.labels
    assert head.evolve(metadata={"a": "b"}).equals(h)


def test_evolve_with_new_tables_checks_the_kept_groups_and_undo_against_them():
    head = Head(weight=np.eye(4, 3, dtype=np.float32), labels=["a x", "a y", "b", "c"], groups={"a": ["a x", "a y"]})
    fewer = catsplit.head.Table(weight=head.weight[1:], bias=None, labels=tuple(head.labels[1:]))
    with pytest.raises(CatsplitError, match="a x"):  # the group names a label the new tables lack
        head.evolve(tables=(fewer,))
    edited = catsplit.split(head, None, "b", ["b 1", "b 2"], method="coarse")
    narrower = catsplit.head.Table(weight=edited.weight[:, :2], bias=None, labels=tuple(edited.labels))
    with pytest.raises(CatsplitError, match="undo"):  # the removed row no longer fits the table's width
        edited.evolve(tables=(narrower,), groups=None)


def test_hierarchical_probabilities_are_gated(encoder, head_and_subs):
    head, subs = head_and_subs
    new = catsplit.split(head, encoder, COARSE, subs, method="alignment", mode="hierarchical")
    x = np.random.default_rng(1).standard_normal((6, head.dim)).astype(np.float32)
    p_old = head.probs(x)
    p_new = new.probs(x)
    ci = head.labels.index(COARSE)
    sub_table = new.tables[1]
    z = x @ sub_table.weight.numpy().T + sub_table.bias.numpy()
    q = np.exp(z - z.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    np.testing.assert_allclose(p_new[:, -len(subs):], p_old[:, [ci]] * q, rtol=1e-4, atol=1e-7)
    keep = [i for i in range(len(head.labels)) if i != ci]
    np.testing.assert_allclose(p_new[:, : len(keep)], p_old[:, keep], rtol=1e-4, atol=1e-7)


def test_edits_pass_the_checked_parts_of_a_head_on_without_checking_them_again(monkeypatch):
    """A chain of splits on a large head must not re-validate (and copy) its whole history and groups each time:
    an edit freezes its own new record only, and keeps the head's Groups as they are."""
    import catsplit.checks as checks_module
    import catsplit.head as head_module

    labels = [f"Action{i // 3} something v{i % 3}" for i in range(60)]
    groups = {f"Action{g} something": labels[3 * g : 3 * g + 3] for g in range(20)}
    head = Head(weight=np.eye(60, 8, dtype=np.float32), labels=labels, groups=groups)
    for i in range(3):
        head = catsplit.split(head, None, labels[3 * i], [f"{labels[3 * i]} left", f"{labels[3 * i]} right"], method="coarse")
    calls = {"records frozen": 0, "check_groups": 0}
    real_freeze, real_check_groups = checks_module._freeze, head_module.check_groups

    def freeze(x, mapping=checks_module.FrozenDict, depth=0):
        calls["records frozen"] += mapping is checks_module.Record
        return real_freeze(x, mapping, depth)

    def check_groups(*args, **kwargs):
        calls["check_groups"] += 1
        return real_check_groups(*args, **kwargs)

    monkeypatch.setattr(checks_module, "_freeze", freeze)
    monkeypatch.setattr(head_module, "check_groups", check_groups)
    edited = catsplit.split(head, None, labels[9], [f"{labels[9]} left", f"{labels[9]} right"], method="coarse")
    assert calls == {"records frozen": 1, "check_groups": 0}  # the new record, nothing else
    restored = catsplit.unsplit(edited, labels[9])
    assert calls["records frozen"] == 1  # the undone edit's groups are checked again: they must fit the smaller head
    assert restored.equals(head) and restored.history == head.history and restored.groups == head.groups
    assert edited.latest_record() == edited.history[-1]
    with pytest.raises(TypeError, match="read-only"):  # nobody can change a head's record through what it hands out
        edited.latest_record()["coarse"] = "changed"


def test_float64_scores_of_a_large_table_are_cast_block_by_block(monkeypatch):
    """A hierarchical head scores its tables in float64; a large base table is cast a block of rows at a time
    (a whole float64 copy of a 100,000 x 1,024 base is 800 MB), with the scores of casting it whole."""
    import catsplit.scoring

    rng = np.random.default_rng(2)
    head = Head(weight=rng.standard_normal((50, 8)).astype(np.float32), bias=rng.standard_normal(50).astype(np.float32),
                labels=[f"c{i}" for i in range(50)])
    edited = catsplit.split(head, None, "c7", ["c7 a", "c7 b"], method="coarse", mode="hierarchical")
    x = torch.from_numpy(rng.standard_normal((5, 8)).astype(np.float32))
    whole = edited.table_logits(x, 0, torch.float64)
    casts = []
    real = torch.Tensor.to
    monkeypatch.setattr(torch.Tensor, "to", lambda t, *a, **k: casts.append(t.numel()) or real(t, *a, **k))
    monkeypatch.setattr(catsplit.scoring, "CAST_BLOCK", 64)  # 8 rows of 8
    blocks = edited.table_logits(x, 0, torch.float64)
    assert max(casts) <= 64 and len(casts) > 7
    assert blocks.dtype == torch.float64 and torch.allclose(blocks, whole, rtol=1e-15, atol=0)
