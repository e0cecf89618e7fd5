"""catsplit.bench.rows: the rows of the benchmark table, by name (the low-shot, merge and gate rows too)."""

import pytest

from catsplit import CatsplitError
from catsplit.bench import rows as table_methods
from conftest import HashEncoder


def test_every_lowshot_row_can_be_named():
    specs = table_methods.specs(["lowshot"])
    names = [n for n, _ in specs]
    for init in ("random", "coarse", "alignment"):
        assert f"finetune-1shot-{init}" in names and f"finetune-5shot-{init}" in names
    assert "finetune-1shot-refine" in names
    default = table_methods.specs(["default"])
    assert {("refine-alignment", "flat"), ("refine-alignment", "hierarchical"), ("refine-retrieval", "flat")} <= set(default)
    with pytest.raises(CatsplitError, match="hierarchical splits keep locality"):
        table_methods.build("alignment-calibrated", "hierarchical", HashEncoder())
    assert {"finetune-full", "merge-alignment-seeds", "alignment-gate", "coarse", "alignment"} <= set(names)
    assert [n for n in names if n.startswith("merge-zs-1shot-")] == [f"merge-zs-1shot-{w}" for w in ("0", "0.25", "0.5", "0.75", "1")]
    for name, mode in specs:
        table_methods.build(name, mode, HashEncoder())
    assert table_methods.specs([]) == table_methods.DEFAULT
    assert table_methods.specs(["coarse", "default", "alignment:hierarchical"])[0] == ("coarse", "flat")
    assert len(table_methods.specs(["coarse", "default"])) == len(table_methods.DEFAULT)  # duplicates dropped
    for bad, msg in (("merge-zs-1shot-abc", "mixing weight"), ("merge-zs-1shot-1.5", "mixing weight"),
                     ("finetune-0shot-coarse", "at least 1 shot"), ("finetune-xshot-coarse", "finetune-<k>shot"),
                     ("finetune-1shot-text", "finetune-<k>shot"), ("nope", "unknown benchmark method")):
        with pytest.raises(CatsplitError, match=msg):
            table_methods.build(bad, "flat", HashEncoder())
    with pytest.raises(CatsplitError, match="no hierarchical mode"):
        table_methods.build("finetune-1shot-random", "hierarchical", HashEncoder())
