"""Models in their own formats: Hugging Face, timm, mmaction2, PyTorchVideo and plain torch checkpoints, read and written."""
