"""Running exported models: an onnxruntime session on the device asked for, and labelled predictions."""

from __future__ import annotations

import os
import warnings
import weakref
from typing import Any

import numpy as np

from catsplit.errors import CatsplitError
from catsplit.export.huggingface import model_labels
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
    try:
        _MODEL_PATHS[sess] = os.fspath(path)  # for labels from the config.json beside a model without catsplit metadata
    except TypeError:
        pass
    return sess


_MODEL_PATHS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()  # session -> its model file


def session_labels(sess: Any) -> list[str]:
    """The labels of a session's output columns: the model's catsplit metadata, else the `id2label` of the
    transformers config.json beside the model file (for sessions made by `session()`)."""
    meta = sess.get_modelmeta().custom_metadata_map
    try:
        path = _MODEL_PATHS.get(sess)
    except TypeError:
        path = None
    return model_labels(meta, path, path or "the model")


def predict(sess: Any, clips: Any, *, batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-1 labels and probabilities over the model's labels.

    Args:
        sess: a session from `session()` on a model exported or edited by catsplit (or any model with a
            transformers config.json beside it, whose id2label names the columns).
        clips: the model input, batch first: numpy, or a torch tensor (a CUDA tensor on a CUDA
            session is bound in place with I/O binding, no copy to the host).
        batch_size: run in chunks of this many (default: all at once).
    Returns:
        (labels str [N], probabilities float32 [N, C]), from the output named in the model's
        catsplit.head metadata (else its first output); empty for an empty batch. The labels are the
        model's own top-1 output where it has one (hierarchical heads: the exact rule), else the
        first argmax of that output as the model gives it (logits: never of a rounded softmax).
    """
    meta = sess.get_modelmeta().custom_metadata_map
    labels = np.asarray(session_labels(sess), dtype=object)
    kind = meta.get(KEY_OUTPUT, "logits")
    names = _output_names(sess, meta)
    n = _batch_len(clips)
    if batch_size is not None and int(batch_size) < 1:  # only a size the caller gave; an empty batch is fine
        raise CatsplitError(f"batch_size must be >= 1, got {batch_size}")
    step = int(batch_size) if batch_size is not None else max(n, 1)
    outs = [_run(sess, clips[i : i + step], names) for i in range(0, n, step)]
    scores = np.concatenate([o[0] for o in outs]) if outs else np.zeros((0, len(labels)), np.float32)
    if scores.ndim != 2 or scores.shape[1] != len(labels):
        raise CatsplitError(f"the model outputs shape {scores.shape}, its metadata names {len(labels)} labels")
    probs = _to_probabilities(scores, kind)
    if len(names) == 1:  # the first argmax: ties go to the earlier column, and NaN counts as the largest value
        top1 = np.argmax(scores, axis=1) if len(scores) else np.zeros(0, np.int64)
    else:
        top1 = np.concatenate([o[1] for o in outs]) if outs else np.zeros(0, np.int64)
        if top1.shape != (len(scores),) or top1.dtype.kind not in "iu" or not ((top1 >= 0) & (top1 < len(labels))).all():
            raise CatsplitError(
                f"the model's {names[1]!r} output must hold one label index in [0, {len(labels)}) per clip, got "
                f"{top1.dtype} of shape {top1.shape}; export or edit the model again with catsplit"
            )
    return labels[top1].astype(str), probs


def _to_probabilities(scores: np.ndarray, kind: str) -> np.ndarray:
    if kind == "probabilities":
        return scores.astype(np.float32, copy=False)
    if kind not in ("logits", "log_probabilities"):
        raise CatsplitError(f"unknown output kind {kind!r} in the model's metadata")
    # Flat logits that overflowed to inf give NaN here, as they do in the model; -MAX - MAX is -inf, whose exp is 0.
    with np.errstate(over="ignore", invalid="ignore"):
        z = scores - scores.max(axis=1, keepdims=True)
        e = np.exp(z)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


# Session -> output names. The catsplit.head metadata holds every table's labels and groups, so
# parsing it per predict() call cost tens of ms on large heads; a session's model never changes.
_OUTPUT_NAMES: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
_TOP1_NAMES: weakref.WeakKeyDictionary[Any, str | None] = weakref.WeakKeyDictionary()


def _output_names(sess: Any, meta: dict[str, str]) -> tuple[str, ...]:
    """(scores,) or (scores, top1): the tensor the head writes, and a hierarchical head's exact top-1 output
    (`top1` in catsplit.head) when the session has it."""
    output = _output_name(sess, meta)
    try:
        top1 = _TOP1_NAMES[sess]
    except (KeyError, TypeError):
        top1 = _parse_top1_name(sess, meta, output)
        try:
            _TOP1_NAMES[sess] = top1
        except TypeError:
            pass
    return (output, top1) if top1 is not None else (output,)


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


def _description(meta: dict[str, str]) -> dict | None:
    """The catsplit.head description, or None when it is absent or damaged: predict reads only the output
    names from it and falls back to the first output (parse_json: no RecursionError on deep nesting)."""
    try:
        desc = parse_json(meta[KEY_HEAD], "")
    except (KeyError, CatsplitError):
        return None
    return desc if isinstance(desc, dict) else None


def _parse_output_name(sess: Any, meta: dict[str, str]) -> str:
    names = [o.name for o in sess.get_outputs()]
    if not names:
        raise CatsplitError("the model has no outputs; predict reads a model exported or edited by catsplit")
    name = (_description(meta) or {}).get("output")
    return name if isinstance(name, str) and name in names else names[0]


def _parse_top1_name(sess: Any, meta: dict[str, str], output: str) -> str | None:
    name = (_description(meta) or {}).get("top1")
    return name if isinstance(name, str) and name != output and name in [o.name for o in sess.get_outputs()] else None


def _batch_len(clips: Any) -> int:
    shape = getattr(clips, "shape", None)
    if shape is None or len(shape) < 1:
        raise CatsplitError(f"clips must be an array or tensor with a batch axis, got {type(clips).__name__}")
    return int(shape[0])


def _run(sess: Any, clips: Any, outputs: tuple[str, ...]) -> list[np.ndarray]:
    inp = sess.get_inputs()[0]
    if type(clips).__module__.startswith("torch"):
        if clips.is_cuda and "CUDAExecutionProvider" in sess.get_providers():
            return _run_bound(sess, clips, outputs)
        clips = clips.detach().cpu().numpy()
    clips = np.ascontiguousarray(clips)
    want = _NUMPY_TYPES.get(inp.type)
    if want is not None and clips.dtype != want:
        raise CatsplitError(f"the model's input {inp.name!r} takes {want.__name__} ({inp.type}); got {clips.dtype}")
    try:
        return sess.run(list(outputs), {inp.name: clips})
    except Exception as exc:
        raise CatsplitError(
            f"onnxruntime could not run the model on input of shape {clips.shape} "
            f"(it expects {inp.name!r} {inp.shape}): {str(exc).strip().splitlines()[0]}"
        ) from None


def _run_bound(sess: Any, clips: Any, outputs: tuple[str, ...]) -> list[np.ndarray]:
    """Run on a CUDA torch tensor without copying it to the host (onnxruntime I/O binding)."""
    import torch

    clips = clips.contiguous()
    binding = sess.io_binding()
    binding.bind_input(
        name=sess.get_inputs()[0].name, device_type="cuda", device_id=clips.device.index or 0,
        element_type=torch.empty(0, dtype=clips.dtype).numpy().dtype.type, shape=tuple(clips.shape),
        buffer_ptr=clips.data_ptr(),
    )
    for output in outputs:
        binding.bind_output(output, "cpu")
    sess.run_with_iobinding(binding)
    return list(binding.copy_outputs_to_cpu())


_NUMPY_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
}
