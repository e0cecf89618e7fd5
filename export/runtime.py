"""Running exported models: an onnxruntime session on the device asked for, and labelled predictions."""

from __future__ import annotations

import os
import warnings
import weakref
from typing import Any

import numpy as np

from catsplit.errors import CatsplitError
from catsplit.export.graph import output_labels
from catsplit.io.keys import KEY_HEAD, KEY_OUTPUT
from catsplit.io.onnx_model import check_model_file
from catsplit.io.readers import parse_json
from catsplit.optional import require_onnxruntime

DEVICES = ("auto", "cuda", "cpu")
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def session(
    path: str | os.PathLike, device: str = "auto", strict: bool = False, *, threads: int | None = None, spinning: bool = True
) -> Any:
    """An onnxruntime InferenceSession on the device asked for, checked against what onnxruntime gave.

    Args:
        path: an .onnx file.
        device: "cuda" (CUDA, falling back to CPU), "cpu", or "auto" (CUDA when this onnxruntime
            build has it, else CPU).
        strict: raise when CUDA was asked for and the session does not run on it; otherwise one
            warning (onnxruntime's own stderr messages are silenced).
        threads: intra-op threads (default: onnxruntime's, one per core).
        spinning: let idle intra-op threads spin (lowest latency); turn it off when several
            sessions or another runtime share the cores.
    Returns:
        an onnxruntime.InferenceSession.
    """
    ort = require_onnxruntime()
    if device not in DEVICES:
        raise CatsplitError(f"device must be one of {DEVICES}, got {device!r}")
    if not os.path.isfile(path):
        raise CatsplitError(f"no ONNX model at {path}")
    check_model_file(path, "running ONNX models")  # damaged tensors are refused here, in catsplit's words
    available = ort.get_available_providers()
    if device == "cpu":
        providers = [CPU]
    elif device == "cuda" or CUDA in available:
        providers = [CUDA, CPU]
    else:
        providers = [CPU]
    ort.set_default_logger_severity(4)  # failures come back as exceptions (reported below in one line), not on stderr
    options = ort.SessionOptions()
    options.log_severity_level = 4
    if threads is not None:
        options.intra_op_num_threads = int(threads)
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if device == "cuda" and CUDA not in available:
        providers = [CPU]  # asking onnxruntime for a provider it lacks only prints noise
    try:
        sess = ort.InferenceSession(os.fspath(path), options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        raise CatsplitError(f"onnxruntime cannot load {path}: {str(exc).strip().splitlines()[0]}") from None
    if device == "cuda" and CUDA not in sess.get_providers():
        why = (
            f"this onnxruntime build has no CUDA provider (available: {available}); install onnxruntime-gpu instead of onnxruntime"
            if CUDA not in available
            else "the CUDA provider failed to start (driver, CUDA or cuDNN libraries missing?)"
        )
        if strict:
            raise CatsplitError(f"CUDA was asked for but {path} runs on {sess.get_providers()}: {why}")
        warnings.warn(f"catsplit: running {os.path.basename(path)} on the CPU: {why}", RuntimeWarning, stacklevel=2)
    return sess


def predict(sess: Any, clips: Any, *, batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-1 labels and probabilities over the model's labels.

    Args:
        sess: a session from `session()` on a model exported or edited by catsplit.
        clips: the model input, batch first: numpy, or a torch tensor (a CUDA tensor on a CUDA
            session is bound in place with I/O binding, no copy to the host).
        batch_size: run in chunks of this many (default: all at once).
    Returns:
        (labels str [N], probabilities float32 [N, C]), from the output named in the model's
        catsplit.head metadata (else its first output); empty for an empty batch.
    """
    meta = sess.get_modelmeta().custom_metadata_map
    labels = np.asarray(output_labels(meta, "the model"), dtype=object)
    kind = meta.get(KEY_OUTPUT, "logits")
    output = _output_name(sess, meta)
    n = _batch_len(clips)
    if batch_size is not None and int(batch_size) < 1:  # only a size the caller gave; an empty batch is fine
        raise CatsplitError(f"batch_size must be >= 1, got {batch_size}")
    step = int(batch_size) if batch_size is not None else max(n, 1)
    outs = [_run(sess, clips[i : i + step], output) for i in range(0, n, step)]
    scores = np.concatenate(outs) if outs else np.zeros((0, len(labels)), np.float32)
    if scores.ndim != 2 or scores.shape[1] != len(labels):
        raise CatsplitError(f"the model outputs shape {scores.shape}, its metadata names {len(labels)} labels")
    probs = _to_probabilities(scores, kind)
    # argmax of the probabilities: ties go to the earlier column, which keeps hierarchical locality exact
    return labels[np.argmax(probs, axis=1)].astype(str), probs


def _to_probabilities(scores: np.ndarray, kind: str) -> np.ndarray:
    if kind == "probabilities":
        return scores.astype(np.float32, copy=False)
    if kind not in ("logits", "log_probabilities"):
        raise CatsplitError(f"unknown output kind {kind!r} in the model's metadata")
    z = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


# Session -> output name. The catsplit.head metadata holds every table's labels and groups, so
# parsing it per predict() call cost tens of ms on large heads; a session's model never changes.
_OUTPUT_NAMES: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def _output_name(sess: Any, meta: dict[str, str]) -> str:
    """The tensor the head writes (`output` in catsplit.head) when the session has it, else the first output."""
    try:
        return _OUTPUT_NAMES[sess]
    except (KeyError, TypeError):  # TypeError: an object that cannot be weakly referenced (or hashed)
        pass
    name = _parse_output_name(sess, meta)
    try:
        _OUTPUT_NAMES[sess] = name
    except TypeError:
        pass  # such a session is simply parsed on every call
    return name


def _parse_output_name(sess: Any, meta: dict[str, str]) -> str:
    names = [o.name for o in sess.get_outputs()]
    if not names:
        raise CatsplitError("the model has no outputs; predict reads a model exported or edited by catsplit")
    try:
        name = parse_json(meta[KEY_HEAD], "")["output"]
    except (KeyError, TypeError, CatsplitError):  # no description, or not one: the first output
        return names[0]
    return name if isinstance(name, str) and name in names else names[0]


def _batch_len(clips: Any) -> int:
    shape = getattr(clips, "shape", None)
    if shape is None or len(shape) < 1:
        raise CatsplitError(f"clips must be an array or tensor with a batch axis, got {type(clips).__name__}")
    return int(shape[0])


def _run(sess: Any, clips: Any, output: str) -> np.ndarray:
    inp = sess.get_inputs()[0]
    if type(clips).__module__.startswith("torch"):
        if clips.is_cuda and "CUDAExecutionProvider" in sess.get_providers():
            return _run_bound(sess, clips, output)
        clips = clips.detach().cpu().numpy()
    clips = np.ascontiguousarray(clips)
    want = _NUMPY_TYPES.get(inp.type)
    if want is not None and clips.dtype != want:
        raise CatsplitError(f"the model's input {inp.name!r} takes {want.__name__} ({inp.type}); got {clips.dtype}")
    try:
        return sess.run([output], {inp.name: clips})[0]
    except Exception as exc:
        raise CatsplitError(
            f"onnxruntime could not run the model on input of shape {clips.shape} "
            f"(it expects {inp.name!r} {inp.shape}): {str(exc).strip().splitlines()[0]}"
        ) from None


def _run_bound(sess: Any, clips: Any, output: str) -> np.ndarray:
    """Run on a CUDA torch tensor without copying it to the host (onnxruntime I/O binding)."""
    import torch

    clips = clips.contiguous()
    binding = sess.io_binding()
    binding.bind_input(
        name=sess.get_inputs()[0].name, device_type="cuda", device_id=clips.device.index or 0,
        element_type=torch.empty(0, dtype=clips.dtype).numpy().dtype.type, shape=tuple(clips.shape),
        buffer_ptr=clips.data_ptr(),
    )
    binding.bind_output(output, "cpu")
    sess.run_with_iobinding(binding)
    return binding.copy_outputs_to_cpu()[0]


_NUMPY_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
}
