"""What catsplit sees in a head, as one JSON-ready report (`catsplit inspect` prints it)."""

from __future__ import annotations

from typing import Any, Sequence

from catsplit.structure import infer_structure, sub_modifiers


def inspect_report(head: Any, coarse: str | None = None, subs: Sequence[str] = ()) -> dict[str, Any]:
    """What catsplit sees in a head: shapes, labels, groups and modifiers (stored or inferred), history.

    Args:
        head: a `catsplit.Head`.
        coarse: leave this label out of the groups and, with `subs`, preview the modifiers a split
            of it into `subs` would use.
        subs: the new fine labels of that preview.
    """
    others = [lab for lab in head.labels if lab != coarse]
    structure = infer_structure(others, head.groups)
    multi = structure.multi_groups()
    report: dict[str, Any] = {
        "classes": head.num_classes,
        "dim": head.dim,
        "dtype": str(head.dtype).removeprefix("torch."),
        "bias": head.bias is not None,
        "kind": head.kind,
        "hierarchical_gates": head.gates,
        "labels": list(head.labels),
        "groups_source": "inferred from label text" if structure.inferred_groups else "stored in the head",
        "groups": multi,
        "single_label_groups": sum(1 for ms in structure.groups.values() if len(ms) == 1),
        "modifiers": {m: structure.modifiers[m] for ms in multi.values() for m in ms},
        "dictionary_entries": sum(len(ms) for ms in multi.values()),
        "history": [{k: v for k, v in rec.items() if k != "details"} for rec in head.history],
    }
    if coarse is not None and subs:
        report["split_preview"] = {"coarse": coarse, "modifiers": dict(zip(subs, sub_modifiers(coarse, subs)))}
    if head.metadata:
        report["foreign_metadata_keys"] = sorted(head.metadata)
    return report
