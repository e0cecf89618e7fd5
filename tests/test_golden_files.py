"""What catsplit writes stays byte for byte what it wrote when the hashes were recorded."""

import json
from pathlib import Path

from golden import golden_hashes


def test_every_edit_path_writes_the_recorded_bytes():
    want = json.loads((Path(__file__).parent / "data" / "golden_hashes.json").read_text())
    got = golden_hashes()
    assert sorted(got) == sorted(want)
    changed = sorted(name for name in want if got[name] != want[name])
    assert not changed, f"these files changed bytes: {changed}"
