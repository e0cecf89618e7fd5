"""catsplit.structure: pseudo-coarse groups and modifiers inferred from label text, or given."""

import pytest

import catsplit
from catsplit import CatsplitError
from catsplit.structure import common_prefix, cut_modifier, infer_structure, sub_modifiers


def test_groups_by_shared_leading_words():
    labels = [
        "Pulling something from left to right",
        "Pulling something onto something",
        "Pushing something",
        "Putting something onto something",
        "putting something into something",
    ]
    s = infer_structure(labels)
    assert s.inferred_groups
    assert s.groups["Pulling something"] == labels[:2]
    assert s.groups["Putting something"] == labels[3:]
    assert s.groups["Pushing something"] == ["Pushing something"]  # a single-member group
    assert s.modifiers["Pulling something from left to right"] == "from left to right"
    assert s.modifiers["Pulling something onto something"] == "onto something"
    assert s.modifiers["putting something into something"] == "into something"
    assert s.modifiers["Pushing something"] == "Pushing something"  # nothing to cut: whole label
    assert set(s.multi_groups()) == {"Pulling something", "Putting something"}


def test_member_equal_to_the_prefix_keeps_its_whole_label():
    s = infer_structure(["Moving something", "Moving something up"])
    assert s.groups == {"Moving something": ["Moving something", "Moving something up"]}
    assert s.modifiers == {"Moving something": "Moving something", "Moving something up": "up"}


def test_sub_modifiers_and_fallback():
    assert sub_modifiers("Pushing something", ["Pushing something from left to right", "Pushing something so it spins"]) == [
        "from left to right",
        "so it spins",
    ]
    # nothing can be cut out: the sub is the start of the coarse label
    assert sub_modifiers("Closing something and Opening something", ["Closing something", "Opening something"]) == [
        "Closing something",
        "Opening something",
    ]
    # partial overlap: what follows the shared words
    assert cut_modifier("Putting something on a surface", "Putting something onto something") == "onto something"
    assert sub_modifiers("Pushing something", ["Pushing something left", "x"], {"x": "to the right"}) == ["left", "to the right"]


def test_overrides():
    labels = ["Pulling a from b", "Pulling a to c", "Tearing a", "Tearing a into pieces"]
    s = infer_structure(labels, groups={"Pulling a": labels[:2]}, modifiers={"Pulling a to c": "towards c"})
    assert not s.inferred_groups
    assert s.groups["Pulling a"] == labels[:2]
    assert s.groups["Tearing a"] == ["Tearing a"] and s.groups["Tearing a into pieces"] == ["Tearing a into pieces"]
    assert s.modifiers["Pulling a to c"] == "towards c" and s.modifiers["Pulling a from b"] == "from b"


def test_given_group_named_like_an_ungrouped_label_keeps_that_label():
    from catsplit.structure import infer_structure

    s = infer_structure(["Tearing a", "Tearing b", "Spin"], groups={"Spin": ["Tearing a", "Tearing b"]})
    assert s.groups["Spin"] == ["Tearing a", "Tearing b"]
    assert ["Spin"] in s.groups.values()  # still there, under another group name


def test_common_prefix_is_case_insensitive_whole_words():
    assert common_prefix(["Put it here", "put it there", "Put it"]) == "Put it"
    assert common_prefix(["Spinning", "Spin"]) == ""


def test_inference_scales_linearly():
    labels = [f"verb{i} something mod{j}" for i in range(2000) for j in range(5)]
    s = infer_structure(labels)
    assert len(s.groups) == 2000 and all(len(m) == 5 for m in s.groups.values())


@pytest.mark.parametrize("labels, match", [
    (["", "a"], "#0: ''"), (["a", "  "], "#1"), (["a", 3], "#1: 3"), ("abc", "list of strings"), (None, "list"),
])
def test_infer_structure_needs_a_list_of_label_strings(labels, match):
    with pytest.raises(CatsplitError, match=match):
        catsplit.infer_structure(labels)
