"""Files in and out: the safetensors container, the catsplit head layout, foreign checkpoints,
the readers of labels and JSON, of array files and of ONNX models (one checked reader per kind of
input), atomic writes, and the file-to-file split."""
