"""Offline text encoders: texts -> L2-normalised float32 [N, E] embeddings.

Importing this package loads neither torch nor onnxruntime; they are imported when an encoder is built.
"""

from catsplit.encoders.minilm import MiniLMEncoder, default_text_encoder, load_text_encoder
from catsplit.encoders.onnx_encoder import OnnxTextEncoder

__all__ = ["MiniLMEncoder", "OnnxTextEncoder", "default_text_encoder", "load_text_encoder"]
