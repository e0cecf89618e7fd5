"""End to end on a trained benchmark model: split, export, verify, compare onnxruntime with torch.

    python -m catsplit.bench.tools.export_check MODEL.safetensors [--coarse LABEL] [--method alignment] [--clips 0]

MODEL is a base model that `catsplit bench` trained and cached (e.g.
~/.cache/catsplit/bench/<key>/A-linear.safetensors). Its head is split (the first coarse class
of the world it has, into that action's fine labels, with the default text encoder), each edit
(flat and hierarchical) is exported with the trained backbone by `to_onnx` (which verifies), and
then the world's test clips are run through torch (backbone + catsplit.Head) and onnxruntime:
printed are the top-1 agreement, the largest probability difference, the labels carried by the
model, and the generality of the edit on the split class's clips.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    import torch

    import catsplit
    from catsplit.bench import models, world
    from catsplit.export import predict, session, to_onnx

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a cached benchmark model (LinearClassifier) .safetensors")
    parser.add_argument("--coarse", help="the class to split (default: the first collapsed action of the model)")
    parser.add_argument("--method", default="alignment", choices=["alignment", "retrieval", "text", "coarse"])
    parser.add_argument("--clips", type=int, default=0, help="test clips per fine label (default: the world's)")
    args = parser.parse_args(argv)

    model, _ = models.load_model(args.model)
    if not isinstance(model, models.LinearClassifier):
        raise SystemExit("export_check needs a linear base model (…-linear.safetensors)")
    arrays = models.export_head(model)
    head = catsplit.Head(weight=arrays["weight"], bias=arrays["bias"], labels=arrays["labels"])
    config = world.WorldConfig() if args.clips == 0 else world.WorldConfig(n_test=args.clips)
    tax = world.taxonomy(config)
    coarse = args.coarse or next(lab for lab in head.labels if lab in tax.fine)
    subs = tax.fine[coarse]
    encoder = None if args.method == "coarse" else catsplit.default_text_encoder()

    t0 = time.perf_counter()
    data = world.generate(config, splits=["test"], progress=False)["test"]
    print(f"rendered {len(data)} test clips in {time.perf_counter() - t0:.0f} s; splitting {coarse!r} into {len(subs)} subs "
          f"with {args.method}")
    fine = np.asarray(tax.labels, dtype=object)[data.labels]
    target = np.isin(fine, subs)
    folder = Path(tempfile.mkdtemp(prefix="catsplit-check-"))
    for mode in ("flat", "hierarchical"):
        edited = catsplit.split(head, encoder, coarse, subs, method=args.method, mode=mode)
        path = to_onnx(model.backbone, edited, folder / f"{mode}.onnx", torch.from_numpy(data.clips[:8]))
        sess = session(path, "cpu")
        labels, probs = predict(sess, data.clips, batch_size=256)
        with torch.no_grad():
            feats = torch.cat([model.backbone(torch.from_numpy(data.clips[i : i + 256])) for i in range(0, len(data), 256)])
        ref = edited.probs(feats).numpy()
        ref_labels = edited.predict(feats)
        stored = sess.get_modelmeta().custom_metadata_map["catsplit.labels"]
        print(f"{mode}: {path.stat().st_size / 1e6:.2f} MB, verified; top-1 agreement with torch "
              f"{np.mean(labels == ref_labels) * 100:.2f} % of {len(labels)} clips; max |p_onnx - p_torch| "
              f"{np.abs(probs - ref).max():.2e}; labels in metadata match: {json.loads(stored) == list(edited.labels)}; "
              f"generality on {coarse!r} clips {np.mean(labels[target] == fine[target]) * 100:.1f} %")
        path.unlink()
    folder.rmdir()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
