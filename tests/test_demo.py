"""catsplit.demo: the end-to-end demo on simulated compositional features."""

from catsplit.demo import DemoConfig, run_demo
from conftest import HashEncoder


def test_demo_splits_above_chance():
    lines = []
    res = run_demo(HashEncoder(), cfg=DemoConfig(), out=lines.append)
    assert res["hierarchical"]["locality"] == 1.0
    assert res["flat"]["generality"] > 2 / 6  # chance among the 6 subs is 1/6
    assert any("Predictions on held-out clips" in line for line in lines)
