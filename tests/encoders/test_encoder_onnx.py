"""catsplit.encoders.onnx: a text encoder from an ONNX export, run by onnxruntime."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from catsplit.encoders import OnnxTextEncoder
from catsplit.encoders import minilm as minilm_mod
from catsplit.encoders import onnx as onnx_mod
from catsplit.errors import CatsplitError
from minilm_reference import REF, TEXTS, cosine, encode_quiet, link_or_copy, onnx_minilm_folder


@pytest.fixture(scope="module")
def onnx_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return onnx_minilm_folder(tmp_path_factory)


def test_onnx_int8_close_to_reference(onnx_folder: Path) -> None:
    onnx = OnnxTextEncoder(onnx_folder)
    assert onnx.dim == 384
    out = encode_quiet(onnx, TEXTS)
    assert out.shape == (len(TEXTS), 384) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert cosine(out.astype(np.float64), REF).min() >= 0.99  # int8 weights: close, not exact


def test_missing_onnxruntime(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` raise ImportError
    with pytest.raises(CatsplitError, match=r"pip install onnxruntime\n.*onnxruntime-gpu.*never both"):
        onnx_mod.require_onnxruntime()
    (tmp_path / "model.onnx").write_bytes(b"")
    link_or_copy(minilm_mod.require_minilm() / "tokenizer.json", tmp_path / "tokenizer.json")
    with pytest.raises(CatsplitError, match=r"pip install onnxruntime"):
        OnnxTextEncoder(tmp_path)


def _tiny_onnx_encoder(folder: Path, outputs: list[str], *, first_ids: bool) -> Path:
    """model.onnx: input_ids -> a token-embedding table lookup; outputs by name (float [N, T, 8] token states,
    float [N, 8] mean as `sentence_embedding`, optionally an int64 copy of the ids declared first)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    table = np.random.default_rng(0).standard_normal((30522, 8)).astype(np.float32)
    nodes = [helper.make_node("Gather", ["table", "input_ids"], ["tokens"])]
    outs = []
    if first_ids:
        nodes.append(helper.make_node("Identity", ["input_ids"], ["ids"]))
        outs.append(helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"]))
    for name in outputs:
        if name == "sentence_embedding":
            nodes.append(helper.make_node("ReduceMean", ["tokens"], [name], axes=[1], keepdims=0))
            outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", 8]))
        else:
            nodes.append(helper.make_node("Identity", ["tokens"], [name]))
            outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", "seq", 8]))
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])], outs,
        initializer=[numpy_helper.from_array(table, "table")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    folder.mkdir()
    onnx.save(model, str(folder / "model.onnx"))
    link_or_copy(minilm_mod.require_minilm() / "tokenizer.json", folder / "tokenizer.json")
    return folder


def test_the_embeddings_output_is_chosen_by_name_not_position(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    texts = ["pushing something", "lifting a cup up"]
    # An int64 copy of the ids comes first (as in an export on PyPI): it must not be read as embeddings.
    named = OnnxTextEncoder(_tiny_onnx_encoder(tmp_path / "a", ["sentence_embedding"], first_ids=True))
    assert named.dim == 8 and named.output_name == "sentence_embedding"
    tokens = OnnxTextEncoder(_tiny_onnx_encoder(tmp_path / "b", ["last_hidden_state"], first_ids=True))
    assert tokens.output_name == "last_hidden_state"
    a = encode_quiet(named, texts)
    assert a.dtype == np.float32 and a.shape == (2, 8)
    for t in texts:  # one text at a time (no padding): both read the mean of its token vectors
        np.testing.assert_allclose(encode_quiet(named, [t]), encode_quiet(tokens, [t]), atol=1e-5)
    # a sentence embedding wins over token states when a graph declares both
    both = OnnxTextEncoder(_tiny_onnx_encoder(tmp_path / "c", ["last_hidden_state", "sentence_embedding"], first_ids=False))
    assert both.output_name == "sentence_embedding"
    # no float output at all: refused, naming the outputs
    with pytest.raises(CatsplitError, match=r"cannot tell which output.*ids \(tensor\(int64\)\)"):
        OnnxTextEncoder(_tiny_onnx_encoder(tmp_path / "d", [], first_ids=True))
    # two unnamed float outputs: ambiguous
    with pytest.raises(CatsplitError, match="cannot tell which output"):
        OnnxTextEncoder(_tiny_onnx_encoder(tmp_path / "e", ["x", "y"], first_ids=False))


def test_a_named_output_that_is_not_float_is_refused(tmp_path: Path) -> None:
    """`sentence_embedding` declared int64 (ids copied under an embeddings name) is refused, naming every output,
    even when a float output follows it."""
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    table = np.random.default_rng(0).standard_normal((30522, 8)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input_ids"], ["sentence_embedding"]),
         helper.make_node("Gather", ["table", "input_ids"], ["tokens"])],
        "ids-as-embeddings", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.INT64, ["batch", "seq"]),
         helper.make_tensor_value_info("tokens", TensorProto.FLOAT, ["batch", "seq", 8])],
        initializer=[numpy_helper.from_array(table, "table")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    (tmp_path / "m").mkdir()
    onnx.save(model, str(tmp_path / "m" / "model.onnx"))
    link_or_copy(minilm_mod.require_minilm() / "tokenizer.json", tmp_path / "m" / "tokenizer.json")
    with pytest.raises(CatsplitError, match=r"output sentence_embedding is tensor\(int64\), not float embeddings "
                                            r"\(outputs: sentence_embedding \(tensor\(int64\)\), tokens \(tensor\(float\)\)\)"):
        OnnxTextEncoder(tmp_path / "m")
