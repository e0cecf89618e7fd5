"""Tiny Hugging Face CLIP text folders with random weights, made by transformers itself (no downloads)."""

from __future__ import annotations

from pathlib import Path

CORPUS = ["pushing something from left to right", "pulling something from right to left", "lifting a cup up",
          "dropping a pen into a box", "moving something towards the camera", "a photo of a cat"] * 5


def clip_tokenizer(folder: Path):
    """A byte-level BPE in CLIP's layout (end-of-word `</w>`, start/end-of-text tokens), trained on CORPUS with
    `tokenizers`, handed to transformers' CLIPTokenizer, and saved by it as `folder/tokenizer.json`."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import CLIPTokenizer

    tok = Tokenizer(models.BPE(unk_token="<|endoftext|>", end_of_word_suffix="</w>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.ByteLevel(add_prefix_space=False)])
    trainer = trainers.BpeTrainer(vocab_size=330, special_tokens=["<|startoftext|>", "<|endoftext|>"], end_of_word_suffix="</w>",
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    model = tok.model
    vocab = tok.get_vocab()
    import json

    merges = json.loads(tok.to_str())["model"]["merges"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in merges]
    hf = CLIPTokenizer(vocab=vocab, merges=merges)
    folder.mkdir(parents=True, exist_ok=True)
    hf.save_pretrained(str(folder))
    del model
    return CLIPTokenizer.from_pretrained(str(folder))


def text_config(tokenizer, **overrides):
    from transformers import CLIPTextConfig

    kw = dict(vocab_size=400, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
              max_position_embeddings=24, projection_dim=12, hidden_act="quick_gelu",
              bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    kw.update(overrides)
    return CLIPTextConfig(**kw)


def clip_folder(folder: Path, kind: str = "text", seed: int = 0, **overrides):
    """A saved CLIPTextModel ("text"), CLIPTextModelWithProjection ("projection") or CLIPModel ("full") with random
    weights and the tokenizer beside it -> (folder, model, tokenizer)."""
    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPTextModel, CLIPTextModelWithProjection, CLIPVisionConfig

    tokenizer = clip_tokenizer(folder)
    cfg = text_config(tokenizer, **overrides)
    torch.manual_seed(seed)
    if kind == "full":
        vision = CLIPVisionConfig(hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
                                  image_size=8, patch_size=4, projection_dim=12)
        model = CLIPModel(CLIPConfig(text_config=cfg.to_dict(), vision_config=vision.to_dict(), projection_dim=12))
    else:
        model = (CLIPTextModel if kind == "text" else CLIPTextModelWithProjection)(cfg)
    with torch.no_grad():  # random weights of a visible size (HF initialises at std 0.02), biases included
        for p in model.parameters():
            p.normal_(0, 0.3)
    model.eval()
    model.save_pretrained(str(folder))
    return folder, model, tokenizer


def reference(model, tokenizer, texts, kind: str):
    """transformers' own embeddings of `texts` (L2-normalised), padded as a batch."""
    import torch

    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        if kind == "text":
            out = model(**batch).pooler_output
        elif kind == "projection":
            out = model(**batch).text_embeds
        else:
            out = model.get_text_features(**batch)
            out = out if isinstance(out, torch.Tensor) else out.pooler_output
    return torch.nn.functional.normalize(out, dim=1).numpy()
