"""Compositional structure of a label set: pseudo-coarse groups and each label's modifier.

The paper reads groups and modifiers from hand-written files. catsplit infers them from the
label text when they are not given: labels that start with the same word form a group, the
group's text is their longest common word prefix ("Pulling something"), and a member's
modifier is what follows it ("from left to right"). Where nothing can be cut out (the label is
the prefix itself, or a single-member group) the modifier is the whole label.

Cost is linear in the number of labels: one dictionary pass by first word, one prefix scan per group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from catsplit.checks import check_group_shapes, check_label_texts, check_text


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


def sub_modifiers(coarse: str, subs: Sequence[str], modifiers: Mapping[str, str] | None = None) -> list[str]:
    """The modifier text of each sub: given, or what follows the coarse label's words."""
    modifiers = modifiers or {}
    return [check_text(modifiers[s], f"modifier of {s!r}") if s in modifiers else cut_modifier(coarse, s) for s in subs]


