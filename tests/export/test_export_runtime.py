"""catsplit.export.runtime: onnxruntime sessions on the device asked for, and labelled predictions."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from catsplit import CatsplitError
from onnx_models import DIM, clips, edited_heads, export, exported, head_model, heads  # noqa: F401 (fixtures)

ort = pytest.importorskip("onnxruntime")


def test_session_reports_a_missing_cuda_provider(tmp_path, heads):
    path = export.to_onnx(None, heads[0], tmp_path / "m.onnx", torch.randn(2, DIM))
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(CatsplitError, match="onnxruntime-gpu"):
        export.session(path, "cuda", strict=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sess = export.session(path, "cuda")
    assert [str(w.message) for w in caught if "CPU" in str(w.message)] and len(caught) == 1
    assert sess.get_providers() == ["CPUExecutionProvider"]
    assert export.session(path, "auto").get_providers() == ["CPUExecutionProvider"]
    with pytest.raises(CatsplitError, match="device must be one of"):
        export.session(path, "tpu")


@pytest.mark.skipif("CUDAExecutionProvider" not in ort.get_available_providers() or not torch.cuda.is_available(),
                    reason="needs onnxruntime-gpu and a CUDA device")
def test_cuda_session_with_io_binding(exported, heads):  # pragma: no cover - GPU machines only
    backbone, paths = exported
    sess = export.session(paths["hier"], "cuda", strict=True)
    assert sess.get_providers()[0] == "CUDAExecutionProvider"
    x = clips(8, seed=3)
    labels_host, probs_host = export.predict(sess, x.numpy())
    labels_dev, probs_dev = export.predict(sess, x.cuda())
    assert labels_dev.tolist() == labels_host.tolist()
    np.testing.assert_allclose(probs_dev, probs_host, atol=1e-5)


def test_predict_in_chunks_and_bad_input(exported):
    _, paths = exported
    sess = export.session(paths["flat"], "cpu")
    x = clips(7, seed=1).numpy()
    labels, probs = export.predict(sess, x)
    labels2, probs2 = export.predict(sess, x, batch_size=3)
    assert labels.tolist() == labels2.tolist()
    np.testing.assert_allclose(probs, probs2, atol=1e-6)
    with pytest.raises(CatsplitError, match="takes uint8"):
        export.predict(sess, x.astype(np.float32))
    with pytest.raises(CatsplitError, match="could not run the model on input of shape"):
        export.predict(sess, x[:, :2])


def test_output_name_is_read_once_per_session(exported, monkeypatch):
    from catsplit.export import runtime

    _, paths = exported
    calls = []
    parse = runtime._parse_output_name
    monkeypatch.setattr(runtime, "_parse_output_name", lambda sess, meta: calls.append(1) or parse(sess, meta))
    sess = export.session(paths["flat"], "cpu")
    x = clips(3, seed=2).numpy()
    first = export.predict(sess, x)
    second = export.predict(sess, x)  # the large catsplit.head JSON is not parsed again
    assert len(calls) == 1 and first[0].tolist() == second[0].tolist()
    assert runtime._OUTPUT_NAMES[sess] == json.loads(sess.get_modelmeta().custom_metadata_map["catsplit.head"])["output"]
    export.predict(export.session(paths["flat"], "cpu"), x)  # a new session is worked out anew
    assert len(calls) == 2


def test_predict_on_an_empty_batch(head_model, edited_heads):
    sess = export.session(head_model, "cpu")
    for batch_size in (None, 4):
        labels, probs = export.predict(sess, np.zeros((0, DIM), np.float32), batch_size=batch_size)
        assert labels.shape == (0,) and probs.shape == (0, len(edited_heads[0].labels))
    with pytest.raises(CatsplitError, match="batch_size must be >= 1, got 0"):
        export.predict(sess, np.zeros((0, DIM), np.float32), batch_size=0)
