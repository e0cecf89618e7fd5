"""Record the sha256 of every golden head file (see tests/golden.py) into golden_hashes.json.

Run from the repository root: `.venv/bin/python tests/data/make_golden_hashes.py`. Only re-run it
for a change that is meant to change what catsplit writes, and say so in its commit.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from golden import golden_hashes  # noqa: E402

out = Path(__file__).with_name("golden_hashes.json")
out.write_text(json.dumps(golden_hashes(), indent=1, sort_keys=True) + "\n")
print(f"wrote {out}")
