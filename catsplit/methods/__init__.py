"""Zero-shot methods: each maps a SplitContext to the k new rows [k, D] (float32)."""

from catsplit.methods.alignment import alignment_rows
from catsplit.methods.coarse import coarse_rows
from catsplit.methods.context import SplitContext
from catsplit.methods.retrieval import retrieval_rows
from catsplit.methods.ridge import ridge_rows

METHODS = {
    "coarse": coarse_rows,
    "text": ridge_rows,
    "retrieval": retrieval_rows,
    "alignment": alignment_rows,
}
NEEDS_ENCODER = {"text", "retrieval", "alignment"}

__all__ = ["METHODS", "NEEDS_ENCODER", "SplitContext"]
