"""catsplit.export.triton_repo: a Triton Inference Server model repository for an exported model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from catsplit import CatsplitError
from onnx_models import DIM, edited_heads, export, exported, head_model, heads, onnx  # noqa: F401 (fixtures)

from onnx import TensorProto, helper  # after onnx_models, which skips the module without onnx


def parse_pbtxt(text: str) -> dict:
    """A small reader for the protobuf text format subset of Triton configs (written independently of the writer)."""
    tokens = re.findall(r'"(?:[^"\\]|\\.)*"|[{}\[\],:]|[^\s{}\[\],:]+', text)
    pos = 0

    def value():
        nonlocal pos
        tok = tokens[pos]
        if tok == "{":
            pos += 1
            return message("}")
        if tok == "[":
            pos += 1
            items = []
            while tokens[pos] != "]":
                items.append(value())
                if tokens[pos] == ",":
                    pos += 1
            pos += 1
            return items
        pos += 1
        if tok.startswith('"'):
            return json.loads(tok)
        try:
            return int(tok)
        except ValueError:
            return tok

    def message(end):
        nonlocal pos
        out: dict = {}
        while pos < len(tokens) and tokens[pos] != end:
            key = tokens[pos]
            pos += 1
            if tokens[pos] == ":":
                pos += 1
            out[key] = value()
        pos += 1
        return out

    return message(None)


def test_triton_repository_matches_the_graph(tmp_path, exported, heads):
    _, paths = exported
    hier = heads[2]
    folder = export.triton(paths["hier"], tmp_path / "repo", name="clf", max_batch_size=16, instance="cpu")
    assert folder == tmp_path / "repo" / "clf"
    config = parse_pbtxt((folder / "config.pbtxt").read_text())
    model = onnx.load(str(paths["hier"]))
    assert config["name"] == "clf" and config["platform"] == "onnxruntime_onnx" and config["max_batch_size"] == 16
    (inp,), (out, top1) = config["input"], config["output"]
    graph_in, graph_out = model.graph.input[0], model.graph.output[0]
    assert inp["name"] == graph_in.name and inp["data_type"] == "TYPE_UINT8"
    assert inp["dims"] == [d.dim_value for d in graph_in.type.tensor_type.shape.dim[1:]]
    assert out["name"] == graph_out.name == "probabilities" and out["data_type"] == "TYPE_FP32"
    assert out["dims"] == [len(hier.labels)] and out["label_filename"] == "labels.txt"
    # the exact top-1 output, int64 [batch]: Triton wants non-empty dims, [ 1 ] reshaped to the model's [ ]
    assert top1 == {"name": "top1", "data_type": "TYPE_INT64", "dims": [1], "reshape": {"shape": []}}
    assert "dynamic_batching" in config and config["instance_group"] == [{"count": 1, "kind": "KIND_CPU"}]
    assert (folder / "labels.txt").read_text().splitlines() == list(hier.labels)
    assert (folder / "1" / "model.onnx").read_bytes() == Path(paths["hier"]).read_bytes()
    with pytest.raises(CatsplitError, match="exists"):
        export.triton(paths["hier"], tmp_path / "repo", name="clf", max_batch_size=16)
    export.triton(paths["flat"], tmp_path / "repo", name="clf", max_batch_size=4, overwrite=True)
    flat_config = parse_pbtxt((folder / "config.pbtxt").read_text())
    assert flat_config["instance_group"] == [{"count": 1, "kind": "KIND_GPU"}]
    assert [o["name"] for o in flat_config["output"]] == ["logits"]  # a flat head has no top-1 output
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == ["clf"]  # no staging folders left


def test_triton_refuses_bad_arguments(tmp_path, exported):
    _, paths = exported
    for kwargs, match in [
        ({"name": "a/b", "max_batch_size": 4}, "plain folder name"),
        ({"name": "m", "max_batch_size": 0}, "max_batch_size"),
        ({"name": "m", "max_batch_size": 4, "instance": "tpu"}, "'gpu' or 'cpu'"),
    ]:
        with pytest.raises(CatsplitError, match=match):
            export.triton(paths["flat"], tmp_path / "repo", **kwargs)
    fixed = tmp_path / "fixed.onnx"
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    entry = model.metadata_props.add()
    entry.key, entry.value = "catsplit.labels", json.dumps(["a", "b", "c"])
    onnx.save(model, str(fixed))
    with pytest.raises(CatsplitError, match="fixed batch of 1"):
        export.triton(fixed, tmp_path / "repo", name="m", max_batch_size=4)


def test_triton_refuses_a_file_as_repository(tmp_path, head_model):
    (tmp_path / "afile").write_text("")
    for repo in (tmp_path / "afile", tmp_path / "afile" / "sub"):
        with pytest.raises(CatsplitError, match="is not a folder"):
            export.triton(head_model, repo, name="m", max_batch_size=4)


@pytest.mark.parametrize("name", ['a"b', "a\nb", "a/b", "a\\b", "a b", "..", "", "mod\u00e8le"])
def test_triton_refuses_names_outside_the_safe_characters(tmp_path, head_model, name):
    with pytest.raises(CatsplitError, match="plain folder name"):
        export.triton(head_model, tmp_path / "repo", name=name, max_batch_size=4)


def test_triton_escapes_tensor_names(tmp_path, edited_heads):
    from google.protobuf import text_format

    odd = 'features "x"\\1'
    path = export.to_onnx(None, edited_heads[0], tmp_path / "m.onnx", torch.randn(2, DIM), input_name=odd)
    folder = export.triton(path, tmp_path / "repo", name="m-1.0", max_batch_size=4)
    line = next(t.strip() for t in (folder / "config.pbtxt").read_text().splitlines() if t.strip().startswith("name: \"features"))
    assert text_format.Parse(line, TensorProto()).name == odd  # read back by protobuf's own text-format parser


def test_triton_without_overwrite_refuses_a_model_folder_that_appears_while_it_writes(tmp_path, head_model, monkeypatch):
    """The check before writing is not enough: a folder made meanwhile (3 of 40 racing trials) was replaced."""
    import shutil

    from catsplit.export import triton_repo

    real_copy = shutil.copyfile

    def copy_while_another_process_creates_the_folder(src, dst):
        (tmp_path / "repo" / "clf").mkdir()  # empty, as a racing writer's first step
        return real_copy(src, dst)

    monkeypatch.setattr(triton_repo.shutil, "copyfile", copy_while_another_process_creates_the_folder)
    with pytest.raises(CatsplitError, match="clf exists"):
        export.triton(head_model, tmp_path / "repo", name="clf", max_batch_size=4)
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == ["clf"]  # the other folder kept, no temp left
    assert list((tmp_path / "repo" / "clf").iterdir()) == []


def test_triton_overwrite_swaps_the_model_folder_in_and_leaves_nothing_behind(tmp_path, head_model):
    first = export.triton(head_model, tmp_path / "repo", name="clf", max_batch_size=4)
    (first / "stale.txt").write_text("from the old version")
    again = export.triton(head_model, tmp_path / "repo", name="clf", max_batch_size=8, overwrite=True)
    assert again == first and not (again / "stale.txt").exists() and "max_batch_size: 8" in (again / "config.pbtxt").read_text()
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == ["clf"]
