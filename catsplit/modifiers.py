"""Modifier phrases rewritten, before encoding, into a form sentence encoders tell apart.

Sentence encoders read "from left to right" and "from right to left" as nearly the same text (MiniLM:
cosine 0.987): both hold the same words. The destination alone carries the direction, so
"from X to Y" becomes "to the Y" ("from left to right" -> "to the right"), wherever it occurs in
a modifier. Only direction words are rewritten (`DIRECTION_WORDS`): "from a box to a shelf" is kept.

Only the text handed to the encoder changes; labels, the modifier texts of the edit record and the
dictionary stay as written. `SplitConfig.normalise_modifiers` switches it (spec/edit-semantics.md).
"""

from __future__ import annotations

import re
from typing import Sequence

#: the version of the rule, recorded with every edit that used it
RULE = "from-x-to-y:to-the-y"

#: words that name a place or side: only "from <one> to <another>" of these is rewritten
DIRECTION_WORDS = (
    "left", "right", "top", "bottom", "front", "back", "inside", "outside", "north", "south", "east", "west",
    "up", "down", "above", "below", "start", "end", "side", "center", "centre", "middle", "edge",
)
_WORD = "|".join(DIRECTION_WORDS)
# "from [the] X to [the] Y", whole words, any case; X and Y direction words
_FROM_TO = re.compile(rf"\bfrom\s+(?:the\s+)?({_WORD})\s+to\s+(?:the\s+)?({_WORD})\b", re.IGNORECASE)


def normalise_modifier(text: str) -> str:
    """One modifier phrase in its encoder form: "from X to Y" -> "to the Y" (X, Y direction words, X != Y).

    Args:
        text: a modifier text ("from left to right", "from the top to the bottom of the box").

    Returns:
        the rewritten text ("to the right", "to the bottom of the box"); the text itself where no
        such phrase occurs.
    """
    def rewrite(m: re.Match) -> str:
        source, destination = m.group(1), m.group(2)
        if source.casefold() == destination.casefold():  # "from left to left": nothing to drop
            return m.group(0)
        return f"to the {destination}"

    return _FROM_TO.sub(rewrite, text)


def encoder_texts(texts: Sequence[str], normalise: bool) -> list[str]:
    """The modifier texts as the encoder gets them: normalised when `normalise`, else as given."""
    return [normalise_modifier(t) for t in texts] if normalise else list(texts)
