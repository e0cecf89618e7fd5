"""Compositional structure of a label set: pseudo-coarse groups and each label's modifier.

The paper reads groups and modifiers from hand-written files. catsplit infers them from the
label text when they are not given: labels that start with the same word form a group, the
group's text is their longest common word prefix ("Pulling something"), and a member's
modifier is what follows it ("from left to right"). Where nothing can be cut out (the label is
the prefix itself, or a single-member group) the modifier is the whole label.

Cost is linear in the number of labels: one dictionary pass by first word, one prefix scan per group.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from catsplit.errors import CatsplitError


@dataclass(frozen=True)
class Structure:
    """Groups and modifiers of a label set."""

    groups: dict[str, list[str]]  # group text -> member labels (single-member groups included)
    modifiers: dict[str, str]  # label -> modifier text
    inferred_groups: bool  # False when the caller gave the groups

    def group_of(self) -> dict[str, str]:
        """label -> its group text."""
        return {m: g for g, members in self.groups.items() for m in members}

    def multi_groups(self) -> dict[str, list[str]]:
        """Groups with >= 2 members: the ones that yield modifier examples."""
        return {g: ms for g, ms in self.groups.items() if len(ms) >= 2}


def words(text: str) -> list[str]:
    return text.split()


def common_prefix(texts: Sequence[str]) -> str:
    """Longest common prefix in whole words, case-insensitive, with the first text's casing."""
    split = [words(t) for t in texts]
    return " ".join(split[0][: _prefix_len(split)])


def _prefix_len(split: Sequence[Sequence[str]]) -> int:
    """Number of leading words (case-insensitive) that all word lists share."""
    return _prefix_len_folded([[x.casefold() for x in w] for w in split])


def _prefix_len_folded(folded: Sequence[Sequence[str]]) -> int:
    """Number of leading words that all (already casefolded) word lists share."""
    first = folded[0]
    k = min(len(w) for w in folded)
    for w in folded[1:]:
        while k and w[:k] != first[:k]:
            k -= 1
    return k


def cut_modifier(base: str, label: str) -> str:
    """What follows `base` in `label` (whole words), or the whole label if nothing follows.

    A partial overlap counts too: under "Putting something on a surface", the sub "Putting something
    onto something" gets "onto something" (what follows the shared words).
    """
    bw, lw = words(base), words(label)
    k = 0
    while k < min(len(bw), len(lw)) and bw[k].casefold() == lw[k].casefold():
        k += 1
    rest = " ".join(lw[k:])
    return rest if k > 0 and rest else label


def infer_structure(
    labels: Sequence[str],
    groups: Mapping[str, Sequence[str]] | None = None,
    modifiers: Mapping[str, str] | None = None,
) -> Structure:
    """Groups and modifiers of `labels`, inferred from the text where not given.

    Args:
        labels: the label set (e.g. a head's labels without the class being split).
        groups: group text -> member labels; labels in no group become single-member groups.
        modifiers: label -> modifier text, overriding what is inferred.
    Returns:
        a `Structure` covering every label.
    """
    check_label_texts(labels)
    if groups is not None:
        check_group_shapes(groups)
    label_set = set(labels)
    mods: dict[str, str] = {}
    if groups is not None:
        out: dict[str, list[str]] = {}
        for g, members in groups.items():
            kept = [m for m in members if m in label_set]
            if kept:
                out[g] = kept
        grouped = {m for ms in out.values() for m in ms}
        for lab in labels:
            if lab not in grouped:
                # a single-member group is named by its label, unless a given group already has that name
                name = lab
                while name in out:
                    name += " (single label)"
                out[name] = [lab]
        for g, members in out.items():
            for m in members:
                mods[m] = cut_modifier(g, m) if len(members) > 1 else m
        inferred = False
    else:
        by_word: dict[str, list[tuple[str, list[str], list[str]]]] = {}
        for lab in labels:
            folded = lab.casefold().split()  # casefolding never adds white space
            by_word.setdefault(folded[0], []).append((lab, lab.split(), folded))
        out = {}
        for members in by_word.values():
            k = _prefix_len_folded([f for _, _, f in members]) if len(members) > 1 else 0
            # Groups differ in their first word, so their names never collide.
            out[" ".join(members[0][1][:k]) if k else members[0][0]] = [lab for lab, _, _ in members]
            for lab, w, _ in members:
                mods[lab] = " ".join(w[k:]) if k and len(w) > k else lab
        inferred = True
    if modifiers:
        # Entries for labels outside this set (e.g. the subs) are read by sub_modifiers.
        for k, v in modifiers.items():
            if k in label_set:
                mods[k] = check_text(v, f"modifier of {k!r}")
    return Structure(groups=out, modifiers=mods, inferred_groups=inferred)


def check_label_texts(labels: object, what: str = "labels") -> None:
    """A list of non-empty label strings (a string is not a list of labels); `head.check_labels` adds uniqueness."""
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence):
        raise CatsplitError(f"{what} must be a list of strings, got {type(labels).__name__} {labels!r:.80}")
    # C-level passes first: label sets of 100,000 are common; the slow search only on failure.
    if set(map(type, labels)) <= {str} and all(map(_VISIBLE.search, labels)):
        return
    bad = [(i, lab) for i, lab in enumerate(labels) if not isinstance(lab, str) or is_blank(lab)]
    if bad:
        shown = ", ".join(f"#{i}: {lab!r}" for i, lab in bad[:5])
        raise CatsplitError(
            f"{what} must be non-empty strings (not only white space or invisible characters); bad entries {shown}. "
            "Give every class a name."
        )


def check_group_shapes(groups: object) -> None:
    """Groups are a mapping: non-empty string name -> non-empty list of member label strings.

    Only the types: whether the members are labels of a head is the caller's check (`head.check_groups`).
    """
    if not isinstance(groups, Mapping):
        raise CatsplitError(f"groups must be a mapping group name -> list of member labels, got {type(groups).__name__}")
    for name, members in groups.items():
        if not isinstance(name, str) or is_blank(name):
            raise CatsplitError(f"group names must be non-empty strings, got {name!r}")
        if isinstance(members, str) or not isinstance(members, Sequence) or not members:
            raise CatsplitError(f"group {name!r} must list its member labels, got {members!r}")
        if not set(map(type, members)) <= {str}:
            bad = [m for m in members if not isinstance(m, str)][:5]
            if bad:
                raise CatsplitError(
                    f"group {name!r} must list its members as label strings; got {bad}. "
                    'Write each group as "group text": ["label", "label", ...]'
                )


def sub_modifiers(coarse: str, subs: Sequence[str], modifiers: Mapping[str, str] | None = None) -> list[str]:
    """The modifier text of each sub: given, or what follows the coarse label's words."""
    modifiers = modifiers or {}
    return [check_text(modifiers[s], f"modifier of {s!r}") if s in modifiers else cut_modifier(coarse, s) for s in subs]


# Characters that show nothing: white space, control characters, and format or filler characters
# such as ZERO WIDTH SPACE, the bidi marks, WORD JOINER, BOM, SOFT HYPHEN, variation selectors and
# the Hangul and Braille blanks. A label made only of these looks empty.
_VISIBLE = re.compile(
    "[^\\s\x00-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
    "\u202a-\u202e\u2060-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e007f]"
)


def is_blank(text: str) -> bool:
    """True when `text` shows nothing: empty, or only white space, control and invisible format characters."""
    return _VISIBLE.search(text) is None


def check_text(text: object, what: str) -> str:
    if not isinstance(text, str) or is_blank(text):
        raise CatsplitError(f"{what} must be a non-empty string (not only white space or invisible characters), got {text!r}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise CatsplitError(f"{what} must be valid Unicode text; {text!r} holds an unpaired surrogate") from None
    return text
