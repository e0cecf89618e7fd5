"""Deployment: edited heads in ONNX (with the backbone), onnxruntime, editing ONNX models, Triton.

Needs the `onnx` extra (onnx, onnxruntime, onnxscript) or the `gpu` extra (onnxruntime-gpu);
those packages load when a function first needs them. The contract of the graphs is in
spec/onnx-contract.md.
"""

from catsplit.export.exporter import check_model, to_onnx
from catsplit.export.onnx_edit import edit_onnx, find_classifier, load_model, split_onnx
from catsplit.export.runtime import predict, session, session_labels
from catsplit.export.triton_repo import triton

__all__ = ["to_onnx", "check_model", "session", "predict", "session_labels", "split_onnx", "edit_onnx", "find_classifier", "load_model", "triton"]
