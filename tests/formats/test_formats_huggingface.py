"""Hugging Face transformers folders (catsplit.formats.huggingface, model, writer), with tiny randomly
initialised VideoMAE, TimeSformer and ViViT models: split, write back, from_pretrained, unsplit."""

import json

import pytest
import torch

import catsplit
from catsplit import CatsplitError
from format_models import COARSE, LABELS, SUBS, hf_model, video

transformers = pytest.importorskip("transformers")
KINDS = ["videomae", "timesformer", "vivit"]


@pytest.fixture(scope="module", params=KINDS)
def hf_folder(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param) / "model"
    model = hf_model(request.param)
    model.save_pretrained(folder)
    return folder, model.eval()


def _loaded(folder):
    model, info = transformers.AutoModelForVideoClassification.from_pretrained(folder, output_loading_info=True)
    return model.eval(), info


def test_the_folder_gives_the_classifier_and_its_labels(hf_folder):
    folder, model = hf_folder
    for source in (folder, folder / "config.json"):
        head = catsplit.load_head(source)  # no key=, no labels=
        assert head.labels == tuple(LABELS)
        assert torch.equal(head.weight, model.classifier.weight) and torch.equal(head.bias, model.classifier.bias)


def test_split_write_and_from_pretrained(hf_folder, tmp_path):
    folder, model = hf_folder
    head = catsplit.load_head(folder)
    new = catsplit.split(head, None, COARSE, SUBS, method="coarse")
    out = catsplit.save_model(new, folder, tmp_path / "edited")
    edited, info = _loaded(out)
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set() and info["mismatched_keys"] == set()
    assert [edited.config.id2label[i] for i in range(len(new.labels))] == list(new.labels)
    assert edited.config.label2id == {lab: i for i, lab in enumerate(new.labels)}
    # the sub rows are catsplit's, every other tensor is the original's
    assert torch.equal(edited.classifier.weight, new.weight) and torch.equal(edited.classifier.bias, new.bias)
    original = model.state_dict()
    for name, t in edited.state_dict().items():
        if not name.startswith("classifier."):
            assert torch.equal(t, original[name]), name
    # every other class scores exactly as before
    x = video()
    with torch.no_grad():
        before, after = model(pixel_values=x).logits, edited(pixel_values=x).logits
    for i, lab in enumerate(new.labels):
        if lab in LABELS:
            assert torch.equal(after[:, i], before[:, LABELS.index(lab)]), lab


def test_unsplit_of_the_written_model_is_bit_exact(hf_folder, tmp_path):
    folder, _ = hf_folder
    head = catsplit.load_head(folder)
    new = catsplit.split(head, None, COARSE, SUBS, method="coarse")
    out = catsplit.save_model(new, folder, tmp_path / "edited")
    loaded = catsplit.load_head(out)
    assert loaded.history == new.history and loaded.equals(new)
    back = catsplit.save_model(catsplit.unsplit(loaded, COARSE), out, tmp_path / "back")
    assert catsplit.load_head(back).equals(head)
    assert (back / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()
    config = json.loads((back / "config.json").read_text())
    assert "catsplit" not in config and config["id2label"] == json.loads((folder / "config.json").read_text())["id2label"]


def test_the_history_survives_from_pretrained_and_save_pretrained(hf_folder, tmp_path):
    folder, _ = hf_folder
    head = catsplit.load_head(folder)
    new = catsplit.split(head, None, COARSE, SUBS, method="coarse")
    out = catsplit.save_model(new, folder, tmp_path / "edited")
    resaved = tmp_path / "resaved"
    _loaded(out)[0].save_pretrained(resaved)
    assert json.loads((resaved / "config.json").read_text())["catsplit"]["history"][0]["coarse"] == COARSE
    back = catsplit.unsplit(catsplit.load_head(resaved), COARSE)
    assert back.equals(head)


def test_a_model_without_a_linear_head_says_what_it_needs(tmp_path):
    folder = tmp_path / "xclip"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architectures": ["XCLIPModel"], "model_type": "xclip"}))
    with pytest.raises(CatsplitError, match="X-CLIP.*no linear classifier.*text of each label"):
        catsplit.load_head(folder)
    (folder / "config.json").write_text(json.dumps({"architectures": ["VideoMAEForPreTraining"], "model_type": "videomae"}))
    with pytest.raises(CatsplitError, match="not a classifier with a linear head.*key="):
        catsplit.load_head(folder)


def test_a_sharded_folder_rewrites_only_the_shard_with_the_classifier(tmp_path):
    model = hf_model("videomae")
    folder = tmp_path / "sharded"
    model.save_pretrained(folder, max_shard_size="20KB")
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    shard = index["weight_map"]["classifier.weight"]
    others = sorted({s for s in index["weight_map"].values()} - {shard})
    assert others, "the model should span several shards"
    new = catsplit.split(catsplit.load_head(folder), None, COARSE, SUBS, method="coarse")
    out = catsplit.save_model(new, folder, tmp_path / "edited")
    for name in others:
        assert (out / name).read_bytes() == (folder / name).read_bytes()
    grown = json.loads((out / "model.safetensors.index.json").read_text())["metadata"]["total_size"]
    assert grown == index["metadata"]["total_size"] + (len(new.labels) - len(LABELS)) * (16 + 1) * 4
    edited, info = _loaded(out)
    assert not info["missing_keys"] and not info["mismatched_keys"] and torch.equal(edited.classifier.weight, new.weight)


def test_a_hierarchical_head_is_refused_naming_the_ways_out(hf_folder, tmp_path):
    folder, _ = hf_folder
    new = catsplit.split(catsplit.load_head(folder), None, COARSE, SUBS, method="coarse", mode="hierarchical")
    with pytest.raises(CatsplitError, match="hierarchical.*ONNX.*to_module"):
        catsplit.save_model(new, folder, tmp_path / "edited")
    assert not (tmp_path / "edited").exists()


def test_labels_replace_id2label_only_on_an_unedited_model(hf_folder, tmp_path):
    folder, _ = hf_folder
    renamed = [f"class {i}" for i in range(len(LABELS))]
    assert catsplit.load_head(folder, labels=renamed).labels == tuple(renamed)
    out = catsplit.save_model(catsplit.split(catsplit.load_head(folder), None, COARSE, SUBS, method="coarse"), folder,
                              tmp_path / "edited")
    with pytest.raises(CatsplitError, match="unedited model"):
        catsplit.load_head(out, labels=renamed + ["x"])


def test_a_folder_with_pytorch_model_bin(tmp_path):
    from safetensors.torch import load_file

    model = hf_model("vivit")
    folder = tmp_path / "bin"
    model.save_pretrained(folder)
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    head = catsplit.load_head(folder)
    new = catsplit.split(head, None, COARSE, SUBS, method="coarse")
    out = catsplit.save_model(new, folder, tmp_path / "edited")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "pytorch_model.bin"]
    edited, info = _loaded(out)
    assert not info["missing_keys"] and not info["mismatched_keys"] and torch.equal(edited.classifier.weight, new.weight)
    assert catsplit.unsplit(catsplit.load_head(out), COARSE).equals(head)


def test_overwriting_the_folder_in_place_and_other_files(hf_folder, tmp_path):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(hf_folder[0], folder)
    (folder / "README.md").write_text("model card")
    (folder / ".cache").mkdir()
    (folder / ".cache" / "x").write_text("not part of the model")
    head = catsplit.load_head(folder)
    new = catsplit.split(head, None, COARSE, SUBS, method="coarse")
    with pytest.raises(CatsplitError, match="exists.*overwrite"):
        catsplit.save_model(new, folder, folder)
    with pytest.raises(CatsplitError, match="inside the model folder"):
        catsplit.save_model(new, folder, folder / "sub", overwrite=True)
    catsplit.save_model(new, folder, folder, overwrite=True)
    assert catsplit.load_head(folder).equals(new)
    assert (folder / "README.md").read_text() == "model card" and not (folder / ".cache").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging or old folder left


def test_a_damaged_catsplit_entry_is_named(hf_folder, tmp_path):
    folder, _ = hf_folder
    out = catsplit.save_model(catsplit.split(catsplit.load_head(folder), None, COARSE, SUBS, method="coarse"), folder,
                              tmp_path / "edited")
    config = json.loads((out / "config.json").read_text())
    good = json.loads(json.dumps(config["catsplit"]))
    for damage, needle in [
        (lambda e: e["undo"]["undo.0.weight"].update(data="AAAA"), "not the base64 of 64 bytes"),
        (lambda e: e["undo"]["undo.0.weight"].update(dtype="I32"), "dtype 'I32'"),
        (lambda e: e["undo"].clear(), "missing undo tensor"),
        (lambda e: e.update(format="9"), "Upgrade catsplit"),
        (lambda e: e.update(history={"op": "split"}), "JSON list of edit records"),
    ]:
        entry = json.loads(json.dumps(good))
        damage(entry)
        config["catsplit"] = entry
        (out / "config.json").write_text(json.dumps(config))
        with pytest.raises(CatsplitError, match="config.json \"catsplit\"") as err:
            catsplit.load_head(out)
        assert needle in str(err.value), str(err.value)


def test_a_hub_cache_snapshot_of_symlinks(tmp_path):
    """The Hub cache keeps a snapshot as symlinks into blobs/: the written folder holds real files."""
    model = hf_model("timesformer")
    saved = tmp_path / "saved"
    model.save_pretrained(saved, max_shard_size="20KB")
    blobs, snapshot = tmp_path / "blobs", tmp_path / "snapshot"
    blobs.mkdir()
    snapshot.mkdir()
    for i, p in enumerate(sorted(saved.iterdir())):
        blob = blobs / f"blob{i}"
        p.rename(blob)
        (snapshot / p.name).symlink_to(blob)
    new = catsplit.split(catsplit.load_head(snapshot), None, COARSE, SUBS, method="coarse")
    out = catsplit.save_model(new, snapshot, tmp_path / "edited")
    assert all(p.is_file() and not p.is_symlink() for p in out.iterdir())
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in snapshot.iterdir())
    edited, info = _loaded(out)
    assert not info["missing_keys"] and not info["mismatched_keys"] and torch.equal(edited.classifier.weight, new.weight)
