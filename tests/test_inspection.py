"""catsplit.inspection: the report `catsplit inspect` prints — shapes, groups and modifiers, history."""

import json

import catsplit
from catsplit.inspection import inspect_report
from conftest import MODIFIERS, VERBS

COARSE = "Pushing something"


def test_report_of_a_plain_head(head_and_subs):
    head, _ = head_and_subs
    report = inspect_report(head)
    assert json.loads(json.dumps(report)) == report  # JSON-ready
    assert {k: report[k] for k in ("classes", "dim", "dtype", "bias", "kind", "hierarchical_gates", "history")} == {
        "classes": 21, "dim": 32, "dtype": "float32", "bias": True, "kind": "linear", "hierarchical_gates": [], "history": []}
    assert report["labels"] == list(head.labels)
    assert report["groups_source"] == "inferred from label text"
    verbs = [v for v in VERBS if v != "Pushing"]
    assert report["groups"] == {f"{v} something": [f"{v} something {m}" for m in MODIFIERS] for v in verbs}
    assert report["single_label_groups"] == 1 and report["dictionary_entries"] == 20  # "Pushing something" is alone
    assert report["modifiers"]["Lifting something onto something"] == "onto something"
    assert "split_preview" not in report and "foreign_metadata_keys" not in report


def test_a_preview_of_a_split_leaves_the_coarse_class_out(head_and_subs):
    head, subs = head_and_subs
    report = inspect_report(head, COARSE, subs[:2])
    assert report["single_label_groups"] == 0
    assert report["split_preview"] == {"coarse": COARSE, "modifiers": {subs[0]: "from left to right", subs[1]: "from right to left"}}
    assert "split_preview" not in inspect_report(head, COARSE)  # no subs: no preview


def test_report_of_an_edited_head_with_stored_groups_and_metadata(head_and_subs):
    head, subs = head_and_subs
    groups = {"Pulling moves": [lab for lab in head.labels if lab.startswith("Pulling")]}
    head = head.evolve(groups=groups, metadata={"origin": "test", "author": "me"})
    edited = catsplit.split(head, None, COARSE, subs[:2], method="coarse", mode="hierarchical")
    report = inspect_report(edited)
    assert report["groups_source"] == "stored in the head" and list(report["groups"]) == ["Pulling moves"]
    assert report["hierarchical_gates"] == [COARSE] and report["classes"] == 22
    assert report["foreign_metadata_keys"] == ["author", "origin"]
    (record,) = report["history"]
    assert record["coarse"] == COARSE and record["method"] == "coarse" and "details" not in record
