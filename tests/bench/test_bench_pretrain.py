"""catsplit.bench.pretrain: the pretraining world and the pretrained backbone of the base models."""

import dataclasses

import numpy as np
import pytest
import torch

from catsplit import CatsplitError
from conftest import HashEncoder


def _tiny(**kw):
    from catsplit.bench.models import TrainConfig

    base = dict(epochs=1, width=4, dim=32, batch_size=8, pretrain="verbs", pretrain_clips=3, pretrain_epochs=1)
    base.update(kw)
    return TrainConfig(**base)


def test_the_pretraining_world_holds_no_benchmark_action_label_or_text():
    from catsplit.bench.world import ACTIONS, MODIFIERS, PRETRAIN_ACTIONS, taxonomy

    bench, pre = taxonomy(), taxonomy(table=PRETRAIN_ACTIONS)
    assert not set(PRETRAIN_ACTIONS) & set(ACTIONS)  # no benchmark action key
    assert not set(pre.coarse) & set(bench.coarse)   # no benchmark action text
    assert not set(pre.labels) & set(bench.labels)   # no benchmark fine label
    for verb in pre.coarse:  # not even a prefix of one: "Pushing something" vs "Pushing something up" ...
        assert not any(b.startswith(verb) or verb.startswith(b) for b in bench.coarse)
    # the vocabulary it shares is the benchmark's shared modifiers (the novel ones stay novel)
    shared = set(bench.shared)
    assert {pre.modifier[f] for f in pre.labels} <= shared
    assert all(MODIFIERS[pre.modifier_key[f]] == pre.modifier[f] for f in pre.labels)


def test_pretrain_none_keeps_the_from_scratch_cache_key():
    from catsplit.bench.models import PRETRAIN_FIELDS, TrainConfig
    from catsplit.bench.run import cache_key
    from catsplit.bench.world import WorldConfig

    scratch = TrainConfig(pretrain="none")
    assert not set(scratch.key_dict()) & set(PRETRAIN_FIELDS)
    # the folder of the published from-scratch table (docs/bench-full.json's config.cache)
    assert cache_key(WorldConfig(), scratch, 0, "all-MiniLM-L6-v2") == "19066807e81fbfd7"
    # the pretraining fields do not matter without pretraining ...
    assert cache_key(WorldConfig(), dataclasses.replace(scratch, backbone_lr=0.3, pretrain_clips=5), 0, "x") == \
        cache_key(WorldConfig(), scratch, 0, "x")
    # ... and every pretraining configuration has folders of its own
    keys = {cache_key(WorldConfig(), dataclasses.replace(scratch, **kw), 0, "x")
            for kw in ({}, {"pretrain": "verbs"}, {"pretrain": "verbs-fine"}, {"pretrain": "verbs", "backbone_lr": 0.3})}
    assert len(keys) == 4


def test_an_unknown_recipe_is_refused():
    from catsplit.bench.pretrain import check_recipe
    from catsplit.bench.run import run_world

    with pytest.raises(CatsplitError, match="pretrain=none"):
        check_recipe("kinetics")
    with pytest.raises(CatsplitError, match="'kinetics'"):
        run_world(quick=True, train_options=["pretrain=kinetics"], cache="/nonexistent-never-made", encoder=HashEncoder())


def test_pretraining_is_deterministic_and_sees_only_its_own_world():
    from catsplit.bench.pretrain import pretrain_backbone, pretrain_world_config, targets
    from catsplit.bench.world import PRETRAIN_ACTIONS, WorldConfig, generate

    wc = WorldConfig(seed=3, n_train=2, n_val=1, n_test=1)
    tc = _tiny()
    pw = pretrain_world_config(wc, tc)
    assert pw.seed != wc.seed and pw.n_test == 0 and (pw.size, pw.frames, pw.noise) == (wc.size, wc.frames, wc.noise)
    pw = dataclasses.replace(pw, actions=tuple(PRETRAIN_ACTIONS)[:2])  # two verbs keep the test small
    data = generate(pw, progress=False, splits=("train", "val"), pretraining=True)
    y, verbs, mods = targets(data.taxonomy, data["train"].labels)
    assert y.shape == (len(data["train"]), 3) and verbs == data.taxonomy.coarse
    assert [data.labels[i] for i in y[:, 0]] == data.label_names("train")
    assert all(mods[m] in data.labels[f] and verbs[v] in data.labels[f] for f, v, m in y)
    one, rep = pretrain_backbone(data, tc, progress=False)
    two, _ = pretrain_backbone(data, tc, progress=False)
    assert one.keys() == two.keys() and all(torch.equal(one[k], two[k]) for k in one)
    other, _ = pretrain_backbone(data, dataclasses.replace(tc, seed=1), progress=False)
    assert not all(torch.equal(one[k], other[k]) for k in one if one[k].is_floating_point())
    assert rep.kind == "pretrain" and rep.epochs_run == 1
    # a "pretraining" world that holds a benchmark action is refused
    bench = generate(WorldConfig(n_train=2, n_val=1, n_test=0, actions=("push", "pull")), progress=False,
                     splits=("train", "val"))
    with pytest.raises(CatsplitError, match="benchmark actions"):
        pretrain_backbone(bench, tc, progress=False)


def test_the_backbone_is_pretrained_once_and_shared_by_both_partitions_and_both_kinds(tmp_path, monkeypatch):
    from catsplit.bench import models, pretrain
    from catsplit.bench.run import run_world
    from catsplit.bench.world import ACTIONS, WorldConfig

    calls, starts = [], []
    real_pretrain, real_train = pretrain.pretrain_backbone, models.train

    def counting(*a, **k):
        calls.append(1)
        return real_pretrain(*a, **k)

    def recording(*a, **k):  # the backbone every base model starts from
        starts.append(a[9] if len(a) > 9 else k.get("backbone"))
        return real_train(*a, **k)

    monkeypatch.setattr(pretrain, "pretrain_backbone", counting)
    monkeypatch.setattr(models, "train", recording)
    wc = WorldConfig(seed=0, n_train=4, n_val=2, n_test=2, actions=tuple(list(ACTIONS)[:4]))
    kw = dict(seeds=1, cache=str(tmp_path / "cache"), encoder=HashEncoder(), progress=False, world_config=wc,
              methods=["coarse"])
    first = run_world(train_config=_tiny(), **kw)
    assert calls == [1] and len(starts) == 4  # A and B, linear and text4vis: one pretraining
    assert all(s is not None and all(torch.equal(s[k], starts[0][k]) for k in s) for s in starts)
    assert first["config"]["pretrain"]["recipe"] == "verbs" and not first["config"]["pretrain"]["from_cache"]
    files = list((tmp_path / "cache").rglob("backbone.safetensors"))
    assert len(files) == 1 and files[0].parent.name.startswith("pretrain-")
    # another fine-tuning setting: new base models, the same cached backbone (not pretrained again)
    second = run_world(train_config=_tiny(backbone_lr=0.5), **kw)
    assert calls == [1] and len(starts) == 8 and second["config"]["pretrain"]["from_cache"]
    assert all(torch.equal(starts[4][k], starts[0][k]) for k in starts[0])
    # the base models really start from it: a pretrained model's backbone differs from a scratch one's
    scratch = run_world(train_config=_tiny(pretrain="none"), **kw)
    assert calls == [1] and starts[-1] is None and scratch["config"]["pretrain"]["recipe"] == "none"
    assert len({first["config"]["cache"], second["config"]["cache"], scratch["config"]["cache"]}) == 3


def test_backbone_lr_fraction_changes_the_fine_tuned_model_only_when_pretrained():
    from catsplit.bench.models import train

    rng = np.random.default_rng(0)
    clips = rng.integers(0, 255, size=(16, 16, 32, 32, 3), dtype=np.uint8)
    y = np.arange(16) % 2
    tc = _tiny(pretrain="none")
    a, _ = train("linear", ["x", "y"], clips, y, clips[:4], y[:4], tc, progress=False)
    b, _ = train("linear", ["x", "y"], clips, y, clips[:4], y[:4], dataclasses.replace(tc, backbone_lr=0.1), progress=False)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))  # scratch: ignored
    init = {k: v.clone() for k, v in a.backbone.state_dict().items()}
    c, _ = train("linear", ["x", "y"], clips, y, clips[:4], y[:4], tc, progress=False, backbone=init)
    d, _ = train("linear", ["x", "y"], clips, y, clips[:4], y[:4], dataclasses.replace(tc, backbone_lr=0.0),
                 progress=False, backbone=init)
    w = "backbone.low.0.0.weight"
    assert torch.equal(d.state_dict()[w], init["low.0.0.weight"])  # lr fraction 0: the backbone stays put
    assert not torch.equal(c.state_dict()[w], init["low.0.0.weight"])
