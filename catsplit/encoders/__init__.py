"""Offline text encoders: texts -> L2-normalised float32 [N, E] embeddings.

    base.py     shared batching, tokenizer loading, pooling (BatchedTextEncoder)
    minilm.py   all-MiniLM-L6-v2 (any BERT folder) in torch: MiniLMEncoder
    onnx.py     a model.onnx + tokenizer.json folder on onnxruntime: OnnxTextEncoder
    clip.py     CLIP's text tower (a Hugging Face CLIPTextModel / CLIPModel folder) in torch: CLIPTextEncoder
    loading.py  the cached default encoder, and choosing an encoder by folder contents

Importing this package loads neither torch nor onnxruntime; they are imported when an encoder is built.
"""

from catsplit.encoders.clip import CLIPTextEncoder
from catsplit.encoders.loading import default_text_encoder, load_text_encoder
from catsplit.encoders.minilm import MiniLMEncoder
from catsplit.encoders.onnx import OnnxTextEncoder

__all__ = ["CLIPTextEncoder", "MiniLMEncoder", "OnnxTextEncoder", "default_text_encoder", "load_text_encoder"]
