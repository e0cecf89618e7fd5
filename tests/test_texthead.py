"""catsplit.texthead: text-embedding heads (after Text4Vis) — rows are template-averaged label embeddings,
logits = scale * cos."""


import numpy as np
import pytest

import catsplit
from catsplit import CatsplitError


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_valid_templates_still_work(encoder):
    for templates in (["a video of {}."], ["{label}!"], ["{{literal}} {}"], ["{0}"], (), None):
        h = catsplit.text_head(["a b", "c d"], encoder, templates=templates)
        assert h.templates == (tuple(templates) or None if templates is not None else None)
    with pytest.raises(CatsplitError, match="scale"):
        catsplit.text_head(["a b", "c d"], encoder, scale=True)
