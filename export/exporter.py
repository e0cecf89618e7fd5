"""Backbone + edited head -> one ONNX graph from clip to output, verified against torch.

The backbone goes through torch.onnx.export (dynamo) with a dynamic batch axis (a transformers
classifier is first cut at its classifier layer, export/huggingface.py); the head is
appended as ONNX nodes by `graph.head_graph` (the same code that `edit_onnx` uses), so a flat
head is one Gemm and a hierarchical head the gated graph of spec/onnx-contract.md.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from catsplit.errors import CatsplitError
from catsplit.export.graph import TOP1, head_graph, head_metadata, set_metadata, unused_name
from catsplit.export.huggingface import classifier_features, is_transformers_classifier
from catsplit.io.atomic import atomic_path, check_destination
from catsplit.optional import require_onnx, require_onnxruntime, require_onnxscript

MAX_BYTES = 2**31 - 1  # protobuf's limit for one serialised model
HEAD_ONLY_OPSET = 17  # opset of head-only graphs (no backbone): old enough for every current runtime
ATOL = 1e-4  # parity with torch: max |difference| of the outputs


def to_onnx(
    backbone: Any,
    head: Any,
    path: str | os.PathLike,
    example_input: Any,
    *,
    opset: int | None = None,
    verify: bool = True,
    input_name: str = "clips",
    output_name: str | None = None,
    overwrite: bool = False,
    key: str | None = None,
) -> Path:
    """Export `backbone` followed by `head` as one ONNX file.

    Args:
        backbone: a torch.nn.Module mapping a batch of clips to float32 features [N, head.dim], or a
            Hugging Face transformers classifier (e.g. VideoMAEForVideoClassification), whose own
            classifier layer `head` replaces (its pooled features, cast to float32, feed the head);
            None exports the head alone (input: float32 features [N, D]).
        head: a catsplit.Head (flat or hierarchical, linear or text).
        path: the .onnx file to write (atomically; an existing file only with overwrite=True).
        example_input: a batch of clips for tracing (torch tensor or numpy); a batch of 1 is
            repeated to 2 so the batch axis stays dynamic. Without a backbone: features, cast to float32.
        opset: ONNX opset, 7 to onnx's newest (default: the torch exporter's; 17 for a head alone).
        verify: run onnx.checker (full check), then onnxruntime on the example input, a batch of
            1 and an odd batch, and compare with torch: max |difference| <= 1e-4 and identical top-1.
        input_name: name of the graph input.
        output_name: name of the graph output (default "logits" for flat heads, "probabilities"
            for hierarchical ones).
        overwrite: replace an existing file.
        key: the classifier layer's name in a transformers `backbone` (default: the linear layer holding
            the head's original rows, as `catsplit.apply` finds it).
    Returns:
        the path written.
    """
    import torch  # heavy: `import catsplit.export` stays light

    from catsplit.head import Head

    onnx = require_onnx()
    newest = onnx.defs.onnx_opset_version()
    if opset is not None and (isinstance(opset, bool) or not isinstance(opset, int) or not 7 <= opset <= newest):
        raise CatsplitError(f"opset must be an integer from 7 to {newest} (this onnx's newest), got {opset!r}; or leave it out")
    if not isinstance(head, Head):
        raise CatsplitError(f"to_onnx needs a catsplit.Head, got {type(head).__name__}; load one with catsplit.load_head")
    check_destination(path, overwrite=overwrite, example="model.onnx")
    if backbone is not None and is_transformers_classifier(backbone):
        backbone = classifier_features(backbone, head, key)
    elif key is not None:
        raise CatsplitError(
            f"key={key!r} names the classifier layer of a Hugging Face transformers model; this backbone is "
            f"{type(backbone).__name__}: drop key="
        )
    output_name = output_name or ("probabilities" if head.is_hierarchical else "logits")
    if output_name == input_name:
        raise CatsplitError(f"input and output are both named {input_name!r}; give them different names")
    example = _as_tensor(example_input)
    if example.ndim < 1 or example.shape[0] < 1:
        raise CatsplitError(f"example_input must be a batch [N, ...] with N >= 1, got shape {tuple(example.shape)}")
    given = f"shape {tuple(example.shape)} and dtype {_dtype(example.dtype)}"  # for errors, before the repeat below
    if example.shape[0] == 1:
        example = example.repeat(2, *([1] * (example.ndim - 1)))  # a traced batch of 1 would be baked in

    if backbone is None:
        if example.ndim != 2 or example.shape[1] != head.dim:
            raise CatsplitError(
                f"without a backbone the input is features [N, {head.dim}]; example_input has shape {tuple(example.shape)}"
            )
        if not example.is_floating_point():
            raise CatsplitError(f"without a backbone the input is float32 features; example_input has dtype {_dtype(example.dtype)}")
        example = example.float()  # the graph's input is float32: float64 / float16 examples are cast
        model = _features_model(onnx, input_name, head.dim, opset or HEAD_ONLY_OPSET)
    else:
        if not isinstance(backbone, torch.nn.Module):
            raise CatsplitError(f"backbone must be a torch.nn.Module, got {type(backbone).__name__}")
        backbone.eval()
        try:
            with torch.no_grad():
                features = backbone(example)
        except Exception as exc:  # the backbone's own error, which says little about the example
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CatsplitError(
                f"the backbone fails on example_input of {given} ({type(exc).__name__}: {first}); give an example batch "
                "of the shape and dtype the backbone takes (CLI: --example-shape, --example-dtype)"
            ) from exc
        if not isinstance(features, torch.Tensor) or features.ndim != 2 or features.shape[1] != head.dim:
            shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
            raise CatsplitError(
                f"the backbone must return features [N, {head.dim}] (the head's dim); it returned {shape}"
            )
        if features.dtype != torch.float32:  # the head's nodes are float32; ONNX does not mix types
            raise CatsplitError(
                f"the backbone returns {_dtype(features.dtype)} features; the head takes float32: end the backbone's "
                "forward with .float()"
            )
        model = _export_backbone(backbone, example, input_name, opset)

    opset_used = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    features_name = model.graph.output[0].name
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    top1 = unused_name(model.graph, TOP1, also=(output_name,))
    graph = head_graph(head, features_name, output_name, opset=opset_used, top1=top1)
    model.graph.node.extend(graph.nodes)
    model.graph.initializer.extend(graph.initializers)
    del model.graph.output[:]
    out = onnx.helper.make_tensor_value_info(output_name, onnx.TensorProto.FLOAT, [None, head.num_classes])
    out.type.tensor_type.shape.dim[0].CopyFrom(batch)
    model.graph.output.append(out)
    if graph.top1 is not None:  # hierarchical: the exact rule's top-1, int64 [batch]
        top = onnx.helper.make_tensor_value_info(graph.top1, onnx.TensorProto.INT64, [None])
        top.type.tensor_type.shape.dim[0].CopyFrom(batch)
        model.graph.output.append(top)
    set_metadata(model, head_metadata(head, graph))
    model.producer_name = "catsplit"

    if model.ByteSize() > MAX_BYTES:
        raise CatsplitError(
            f"the model is {model.ByteSize() / 2**30:.1f} GiB; a single ONNX file must stay below 2 GiB. "
            "Export a smaller backbone or store its weights in float16"
        )
    with atomic_path(path, overwrite=overwrite, example="model.onnx") as tmp:
        tmp.write_bytes(model.SerializeToString())
        if verify:  # before the file gets its name: a model that fails never appears at `path`
            check_model(tmp, backbone, head, example)
    return Path(path)


def check_model(path: str | os.PathLike, backbone: Any, head: Any, example: Any) -> None:
    """onnx.checker (full check), then parity with torch on `example`, a batch of 1 and an odd batch.

    Raises CatsplitError naming the largest difference or the top-1 disagreement.
    """
    import torch

    onnx = require_onnx("checking an exported model")
    ort = require_onnxruntime("checking an exported model")
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise CatsplitError(f"the exported model fails onnx.checker: {str(exc).splitlines()[0]}") from None
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own Fail/InvalidGraph/...: e.g. an opset newer than it supports
        raise CatsplitError(f"onnxruntime cannot load the exported model: {str(exc).strip().splitlines()[0]}") from None
    name = session.get_inputs()[0].name
    example = _as_tensor(example)
    n = example.shape[0]
    odd = example.repeat(2, *([1] * (example.ndim - 1)))[: n + 1 if n % 2 == 0 else n + 2]  # an odd batch > 1
    for batch in (example, example[:1], odd):
        with torch.no_grad():
            features = batch if backbone is None else backbone(batch)
            reference = head.probs(features) if head.is_hierarchical else head.logits(features)
            top1 = head.predict_index(features)
        try:
            outputs = session.run(None, {name: batch.numpy()})
        except Exception as exc:  # e.g. a node this onnxruntime implements differently at the opset asked for
            raise CatsplitError(
                f"onnxruntime cannot run the exported model on a batch of {len(batch)}: {str(exc).strip().splitlines()[0]}"
            ) from None
        got = outputs[0]
        if got.shape != tuple(reference.shape):
            raise CatsplitError(f"onnxruntime gave shape {got.shape} for a batch of {len(batch)}, torch {tuple(reference.shape)}")
        ref = reference.numpy()
        with np.errstate(invalid="ignore"):  # inf - inf where both overflowed alike
            same = (got == ref) | (np.isnan(got) & np.isnan(ref))  # equal infinities, NaN in both (flat logits that overflow)
            diff = np.where(same, 0.0, np.abs(got - ref))
        worst = np.unravel_index(int(np.argmax(diff)), diff.shape)
        if not diff.max() <= ATOL:  # also catches NaN in one of them
            raise CatsplitError(
                f"onnxruntime and torch disagree by {diff.max():.3g} (> {ATOL}) at clip {worst[0]}, "
                f"label {head.labels[worst[1]]!r} (batch of {len(batch)})"
            )
        # A different top-1 counts unless torch itself scores the two labels within ATOL (a tie, e.g.
        # the identical rows of a coarse copy, which the two runtimes may round either way).
        rows = np.arange(len(ref))
        theirs = outputs[1] if head.is_hierarchical else np.argmax(got, axis=1)  # hierarchical: the exact rule's output
        if theirs.shape != (len(ref),):
            raise CatsplitError(f"onnxruntime gave a top-1 of shape {theirs.shape} for a batch of {len(batch)}")
        with np.errstate(invalid="ignore"):
            moved = np.nonzero((theirs != top1) & ~(ref[rows, top1] - ref[rows, theirs] <= ATOL))[0]
        if len(moved):
            raise CatsplitError(
                f"onnxruntime's top-1 differs from torch's for clips {moved[:5].tolist()} (batch of {len(batch)}); "
                f"largest output difference {diff.max():.3g}"
            )


def _dtype(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def _as_tensor(x: Any) -> Any:
    import torch

    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    try:
        return torch.from_numpy(np.ascontiguousarray(x))
    except TypeError as exc:
        raise CatsplitError(f"example_input must be a torch tensor or numpy array, got {type(x).__name__} ({exc})") from None


def _features_model(onnx: Any, input_name: str, dim: int, opset: int) -> Any:
    """An empty graph whose input is the features [batch, D] and whose output is that input."""
    x = onnx.helper.make_tensor_value_info(input_name, onnx.TensorProto.FLOAT, ["batch", dim])
    graph = onnx.helper.make_graph([], "catsplit_head", [x], [x])
    opsets = [onnx.helper.make_opsetid("", opset)]
    # The lowest IR version that carries this opset (onnx's default may be newer than onnxruntime reads), but at
    # least 4: before IR 4 every initializer must also be a graph input (opsets 7 and 8 would get IR 3).
    ir_version = max(onnx.helper.find_min_ir_version_for(opsets), 4)
    return onnx.helper.make_model(graph, opset_imports=opsets, producer_name="catsplit", ir_version=ir_version)


def _export_backbone(backbone: Any, example: Any, input_name: str, opset: int | None) -> Any:
    import torch

    require_onnxscript()
    features_name = "features" if input_name != "features" else "backbone_features"
    with _quiet_exporter():
        try:
            program = torch.onnx.export(
                backbone, (example,), None, input_names=[input_name], output_names=[features_name],
                dynamic_shapes=({0: torch.export.Dim("batch")},), opset_version=opset, external_data=False,
                dynamo=True, verbose=False,
            )
        except Exception as exc:  # the exporter raises many types; name the cause and the way out
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CatsplitError(
                f"torch.onnx.export could not export the backbone ({type(exc).__name__}: {first}). "
                "Check that its forward takes one batch tensor and has no data-dependent Python control flow"
            ) from exc
    model = program.model_proto
    if len(model.graph.input) != 1 or len(model.graph.output) != 1:
        raise CatsplitError(
            f"the backbone graph has {len(model.graph.input)} inputs and {len(model.graph.output)} outputs; "
            "catsplit exports backbones with one input and one output"
        )
    return model


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's warnings about optional packages (torchvision) and deprecations."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
