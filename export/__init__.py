"""Deployment: ONNX export, onnxruntime sessions, Triton repositories (issue 5 fills this in)."""
