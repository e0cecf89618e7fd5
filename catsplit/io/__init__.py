"""Files in and out: the safetensors container, the catsplit head layout, foreign checkpoints,
the readers of labels, JSON and clip arrays, atomic writes, and the file-to-file split."""
