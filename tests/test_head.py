import numpy as np
import pytest
import torch

import catsplit
from catsplit import CatsplitError, Head


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


def test_catsplit_error_is_value_error():
    assert issubclass(CatsplitError, ValueError)


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


def test_import_is_light():
    import subprocess
    import sys

    code = "import sys, catsplit; print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'matplotlib', 'tokenizers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert catsplit.__version__
    assert "split" in dir(catsplit)


def test_exported_names_are_not_shadowed_by_submodules():
    """A submodule named like an exported function would replace it on first import."""
    import importlib
    import pkgutil

    for mod in pkgutil.iter_modules(catsplit.__path__):
        if mod.name != "__main__":  # importing it runs the CLI
            importlib.import_module(f"catsplit.{mod.name}")
    for name in catsplit.__all__:
        assert not isinstance(getattr(catsplit, name), type(catsplit)), name


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


def test_chain_speed_script_restores_the_head_and_prints_medians(capsys):
    from catsplit.bench.tools.chain_speed import main

    main(["--labels", "40", "--edits", "3", "--repeats", "1"])
    assert "40 labels, 3 edits, 1 repeats: splits" in capsys.readouterr().out


def test_the_new_edit_record_is_the_heads_own_and_checked():
    """apply_split takes the method's details into the record: copied, and refused if they cannot be saved."""
    from catsplit.edit import apply_split, plan_split

    head = Head(weight=np.eye(4, 3, dtype=np.float32), labels=["a x", "a y", "b", "c"])
    plan = plan_split(head, None, "b", ["b 1", "b 2"], method="coarse")
    plan.details["note"] = ["kept"]
    edited = apply_split(head, plan)
    plan.details["note"].append("changed afterwards")
    assert edited.history[-1]["details"]["note"] == ("kept",)
    plan.details["junk"] = np.float32(1)
    with pytest.raises(CatsplitError, match="new edit record.*cannot be written as JSON"):
        apply_split(head, plan)


def test_evolve_with_new_tables_checks_the_kept_groups_and_undo_against_them():
    head = Head(weight=np.eye(4, 3, dtype=np.float32), labels=["a x", "a y", "b", "c"], groups={"a": ["a x", "a y"]})
    fewer = catsplit.head.Table(weight=head.weight[1:], bias=None, labels=tuple(head.labels[1:]))
    with pytest.raises(CatsplitError, match="a x"):  # the group names a label the new tables lack
        head.evolve(tables=(fewer,))
    edited = catsplit.split(head, None, "b", ["b 1", "b 2"], method="coarse")
    narrower = catsplit.head.Table(weight=edited.weight[:, :2], bias=None, labels=tuple(edited.labels))
    with pytest.raises(CatsplitError, match="undo"):  # the removed row no longer fits the table's width
        edited.evolve(tables=(narrower,), groups=None)
