"""End-to-end demo: train a small head on simulated compositional features, split a class, compare.

The features of a clip of "<action> something <modifier>" are simulated as action vector +
modifier vector + noise in a 64-d space, so that, as in a real video backbone, a modifier looks
the same under every action. The head is trained (softmax regression) on a mixed-granularity
label set in which "Pushing something" is one coarse class; the split then recovers its fine
classes from their label text alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

ACTIONS = ["Pushing something", "Pulling something", "Moving something", "Lifting something", "Sliding something"]
MODIFIERS = ["from left to right", "from right to left", "up", "down", "towards the camera", "away from the camera"]
COARSE = "Pushing something"


@dataclass(frozen=True)
class DemoConfig:
    dim: int = 64  # feature dimension of the simulated backbone
    noise: float = 1.0  # per-clip feature noise (std per dimension, relative to unit class vectors)
    train_per_class: int = 60  # clips per fine label to train the head on
    test_per_class: int = 30  # held-out clips per fine label
    epochs: int = 300  # full-batch softmax-regression steps
    seed: int = 0


def simulate(cfg: DemoConfig) -> tuple[dict[str, np.ndarray], Callable[[str, int, np.random.Generator], np.ndarray]]:
    """Per-concept vectors and a sampler of clip features for a fine label."""
    rng = np.random.default_rng(cfg.seed)
    vec = {c: rng.standard_normal(cfg.dim) / np.sqrt(cfg.dim) * 2.0 for c in ACTIONS + MODIFIERS}

    def sample(fine: str, n: int, r: np.random.Generator) -> np.ndarray:
        action = next(a for a in ACTIONS if fine.startswith(a))
        modifier = fine[len(action) + 1 :]
        centre = vec[action] + vec[modifier]
        return (centre + cfg.noise * r.standard_normal((n, cfg.dim)) / np.sqrt(cfg.dim) * 2.0).astype(np.float32)

    return vec, sample


def train_head(x: np.ndarray, y: np.ndarray, n_classes: int, epochs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Softmax regression, full batch (stands in for the classifier of a trained backbone) -> W [C, D], b [C]."""
    import torch

    g = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    w = (0.01 * torch.randn(n_classes, x.shape[1], generator=g)).requires_grad_()
    b = torch.zeros(n_classes, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=0.05)
    for _ in range(epochs):
        loss = torch.nn.functional.cross_entropy(xt @ w.T + b, yt) + 1e-4 * (w**2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return w.detach().numpy(), b.detach().numpy()


def run_demo(encoder: Callable | None = None, method: str = "alignment", cfg: DemoConfig = DemoConfig(), out: Callable[[str], None] = print) -> dict:
    """Build a head, split `COARSE` zero-shot, print before/after predictions and the scores.

    Returns:
        {"generality": ..., "locality": ..., "agreement": ...} for "flat", "hierarchical" and the "coarse" baseline.
    """
    from catsplit import Head, evaluate, split

    _, sample = simulate(cfg)
    subs = [f"{COARSE} {m}" for m in MODIFIERS]
    fine = [f"{a} {m}" for a in ACTIONS for m in MODIFIERS]
    base_labels = [COARSE] + [f for f in fine if not f.startswith(COARSE)]
    to_base = {f: (COARSE if f in subs else f) for f in fine}
    rng = np.random.default_rng(cfg.seed + 1)
    x_tr = np.concatenate([sample(f, cfg.train_per_class, rng) for f in fine])
    y_tr = np.array([base_labels.index(to_base[f]) for f in fine for _ in range(cfg.train_per_class)])
    w, b = train_head(x_tr, y_tr, len(base_labels), cfg.epochs, cfg.seed)
    head = Head(weight=w, bias=b, labels=base_labels)
    out(f"Trained head: {head}; '{COARSE}' is one coarse class.")

    x_te = np.concatenate([sample(f, cfg.test_per_class, rng) for f in fine])
    y_te = [f for f in fine for _ in range(cfg.test_per_class)]
    results = {}
    for mode in ("flat", "hierarchical"):
        edited = split(head, encoder, COARSE, subs, method=method, mode=mode, seed=cfg.seed)
        if mode == "flat":
            out(f"\nSplit {COARSE!r} into {len(subs)} subs with method={method!r} (zero-shot: label text only).")
            out(f"Modifiers used: {edited.latest_record()['modifiers']}")
            out("\nPredictions on held-out clips of the coarse class (before -> after):")
            shown = [i for i, t in enumerate(y_te) if t in subs][:: cfg.test_per_class][: len(subs)]
            before, after = head.predict(x_te[shown]), edited.predict(x_te[shown])
            for i, bp, ap in zip(shown, before, after):
                mark = "ok" if ap == y_te[i] else "  "
                out(f"  [{mark}] true '{y_te[i]}': '{bp}' -> '{ap}'")
        s = evaluate(head, edited, x_te, y_te, coarse=COARSE)
        results[mode] = {"generality": s.generality, "locality": s.locality, "agreement": s.agreement}
        out(
            f"{mode:>12}: generality {100 * s.generality:5.1f} % (chance {100 / len(subs):.1f} %), "
            f"locality {100 * s.locality:5.1f} %, agreement {100 * s.agreement:5.1f} %"
        )
    baseline = evaluate(head, split(head, None, COARSE, subs, method="coarse"), x_te, y_te, coarse=COARSE)
    out(f"for comparison, method='coarse' (every sub a copy of the coarse row): generality {100 * baseline.generality:5.1f} %")
    results["coarse"] = {"generality": baseline.generality, "locality": baseline.locality, "agreement": baseline.agreement}
    return results
