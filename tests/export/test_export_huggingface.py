"""catsplit.export.huggingface and its use: labels from the transformers config.json beside an ONNX model (an
Optimum-style export folder) in split_onnx, predict and triton, the edited config.json written beside the output,
and to_onnx taking a transformers video classifier directly (tiny random VideoMAE / TimeSformer, no download)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import catsplit
from catsplit import CatsplitError
from catsplit.export.huggingface import config_labels
from hf_models import COARSE, LABELS, SUBS, clips, model_head, tiny_model
from onnx_models import export, metadata, onnx  # noqa: F401 (skips without onnx)

pytest.importorskip("onnxscript")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def optimum_folder(tmp_path_factory):
    """A tiny VideoMAE exported as Optimum does: model.onnx (no catsplit metadata) beside its config.json."""
    model = tiny_model()
    folder = tmp_path_factory.mktemp("videomae-onnx")
    torch.onnx.export(model, (clips(2),), str(folder / "model.onnx"), input_names=["pixel_values"], output_names=["logits"],
                      dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True, external_data=False)
    model.config.save_pretrained(folder)
    return folder, model


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.parametrize("mode", ["flat", "hierarchical"])
def test_split_onnx_reads_and_writes_the_labels_of_an_optimum_folder(optimum_folder, tmp_path, mode):
    src, model = optimum_folder
    before = _snapshot(src)
    out = export.split_onnx(src, f"{tmp_path / 'edited'}/", None, COARSE, SUBS, method="coarse", mode=mode, order="keep")
    assert out == tmp_path / "edited" / "model.onnx" and _snapshot(src) == before
    expected = catsplit.split(model_head(model), None, COARSE, SUBS, method="coarse", mode=mode, order="keep")
    config = transformers.AutoConfig.from_pretrained(tmp_path / "edited")
    assert config.id2label == dict(enumerate(expected.labels)) and config.label2id == {l: i for i, l in enumerate(expected.labels)}
    assert config.num_labels == len(LABELS) + len(SUBS) - 1 and config.model_type == "videomae"
    x = clips(3, seed=4)
    labels, probs = export.predict(export.session(out, "cpu"), x.numpy())
    with torch.no_grad():
        reference = torch.softmax(catsplit.apply(model, expected)(pixel_values=x).logits, dim=-1)
    np.testing.assert_allclose(probs, reference.numpy(), atol=1e-5)
    assert list(labels) == [expected.labels[i] for i in reference.argmax(1)]
    # edited again: its labels now come from its catsplit metadata, and the config follows once more
    (tmp_path / "again").mkdir()
    again = export.split_onnx(out, tmp_path / "again", None, "Holding something", ["Holding something a", "Holding something b"],
                              method="coarse", order="keep")
    assert json.loads((again.parent / "config.json").read_text())["id2label"]["3"] == "Holding something a"


def test_predict_and_triton_read_the_labels_of_the_config_beside_a_foreign_model(optimum_folder, tmp_path, capsys):
    src, model = optimum_folder
    assert "catsplit.labels" not in metadata(src / "model.onnx")
    x = clips(2, seed=1)
    labels, probs = export.predict(export.session(src / "model.onnx", "cpu"), x.numpy())
    with torch.no_grad():
        top = model(pixel_values=x).logits.argmax(1)
    assert list(labels) == [LABELS[i] for i in top]
    folder = export.triton(src / "model.onnx", tmp_path / "repo", name="videomae", max_batch_size=4, instance="cpu")
    assert (folder / "labels.txt").read_text().splitlines() == LABELS
    from catsplit.cli import main

    np.save(tmp_path / "clips.npy", x.numpy())
    assert main(["predict", str(src / "model.onnx"), str(tmp_path / "clips.npy"), "--device", "cpu", "--top", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in report["predictions"]] == list(labels)
    assert {t["label"] for r in report["predictions"] for t in r["top"]} <= set(LABELS)


def test_the_edited_config_is_never_written_over_another_models(optimum_folder, tmp_path):
    src, _ = optimum_folder
    before = _snapshot(src)
    with pytest.raises(CatsplitError, match="would share .*config.json with .*model.onnx.*another folder"):
        export.split_onnx(src / "model.onnx", src / "edited.onnx", None, COARSE, SUBS, method="coarse")
    assert _snapshot(src) == before
    out = tmp_path / "out"
    out.mkdir()
    (out / "config.json").write_text("{}")
    with pytest.raises(CatsplitError, match="config.json exists; .*overwrite=True"):
        export.split_onnx(src, out, None, COARSE, SUBS, method="coarse")
    assert sorted(p.name for p in out.iterdir()) == ["config.json"]  # checked before any work: no model written
    export.split_onnx(src, out, None, COARSE, SUBS, method="coarse", overwrite=True)
    assert json.loads((out / "config.json").read_text())["id2label"]["4"] == SUBS[0]


def test_labels_without_metadata_or_config_are_asked_for(optimum_folder, tmp_path):
    src, _ = optimum_folder
    lone = tmp_path / "lone.onnx"
    lone.write_bytes((src / "model.onnx").read_bytes())
    with pytest.raises(CatsplitError, match="no config.json with id2label beside it; pass labels="):
        export.split_onnx(lone, tmp_path / "e.onnx", None, COARSE, SUBS, method="coarse")
    with pytest.raises(CatsplitError, match="no 'catsplit.labels' metadata and no config.json"):
        export.predict(export.session(lone, "cpu"), clips(1).numpy())
    with pytest.raises(CatsplitError, match="holds no model.onnx"):
        export.split_onnx(tmp_path, tmp_path / "e.onnx", None, COARSE, SUBS, method="coarse")


@pytest.mark.parametrize("id2label, message", [
    ({"1": "b", "0": "a", "2": "c"}, None),
    ({"0": "a", "2": "c"}, r"0\.\.1, each once; missing: \[1\]"),
    ({"0": "a", "x": "b"}, r"integer indices as keys; bad keys \['x'\]"),
    ({"0": "a", "-1": "b"}, r"bad keys \['-1'\]"),
    ({"0": "a", "1": "A"}, "collide"),
    ({"0": "a\nb"}, "line"),
    ([], "non-empty object"),
])
def test_config_labels_are_checked(id2label, message):
    if message is None:
        assert config_labels({"id2label": id2label}, "config.json") == ["a", "b", "c"]
        assert config_labels({"model_type": "videomae"}, "config.json") is None
        return
    with pytest.raises(CatsplitError, match=message):
        config_labels({"id2label": id2label}, "config.json")


@pytest.mark.parametrize("kind, mode", [("videomae", "flat"), ("videomae", "hierarchical"), ("timesformer", "hierarchical"),
                                        ("vivit", "flat")])
def test_to_onnx_takes_a_transformers_video_classifier(tmp_path, kind, mode):
    model = tiny_model(kind)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    edited = catsplit.split(model_head(model), None, COARSE, SUBS, method="coarse", mode=mode, order="keep")
    path = export.to_onnx(model, edited, tmp_path / "model.onnx", clips(2))  # verified against torch
    assert type(model.classifier) is torch.nn.Linear and all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert json.loads(metadata(path)["catsplit.labels"]) == list(edited.labels)
    x = clips(5, seed=3)
    _, probs = export.predict(export.session(path, "cpu"), x.numpy())
    with torch.no_grad():
        reference = torch.softmax(catsplit.apply(model, edited)(pixel_values=x).logits, dim=-1)
    np.testing.assert_allclose(probs, reference.numpy(), atol=1e-5)


def test_to_onnx_key_is_for_transformers_models(tmp_path):
    head = catsplit.Head(weight=torch.randn(5, 32), labels=LABELS)
    with pytest.raises(CatsplitError, match="key='classifier' names the classifier layer of a Hugging Face.*drop key="):
        export.to_onnx(torch.nn.Identity(), head, tmp_path / "m.onnx", torch.randn(2, 32), key="classifier")
    model = tiny_model()
    stranger = catsplit.Head(weight=torch.randn(5, model.config.hidden_size), labels=LABELS)  # not the model's rows: named by key, no warning
    export.to_onnx(model, stranger, tmp_path / "k.onnx", clips(2), key="classifier")


def test_a_bare_transformers_backbone_is_not_taken_for_a_classifier(tmp_path):
    bare = transformers.VideoMAEModel(tiny_model().config).eval()  # returns hidden states, has no classifier
    head = catsplit.Head(weight=torch.randn(5, 32), labels=LABELS)
    with pytest.raises(CatsplitError, match=r"the backbone must return features \[N, 32\].*BaseModelOutput"):
        export.to_onnx(bare, head, tmp_path / "m.onnx", clips(2))
