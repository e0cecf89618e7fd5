"""catsplit.bench.options: --world-option / --train-option, single-field changes of the bench presets."""

import pytest

from catsplit import CatsplitError
from catsplit.bench.models import TrainConfig
from catsplit.bench.options import override
from catsplit.bench.world import WorldConfig


def test_values_are_parsed_by_field_type():
    wc = override(WorldConfig(), ["noise=10", "max_distractors = 3", "actions=push,pull"], "--world-option")
    assert (wc.noise, wc.max_distractors, wc.actions) == (10.0, 3, ("push", "pull"))
    assert isinstance(wc.noise, float) and isinstance(wc.max_distractors, int)
    assert wc.shake == WorldConfig().shake  # untouched fields keep the preset
    tc = override(TrainConfig.quick(), ["multiscale=true", "augment=no", "threads=none", "logit_scale=-1.5", "dim=64"],
                  "--train-option")
    assert (tc.multiscale, tc.augment, tc.threads, tc.logit_scale, tc.dim) == (True, False, None, -1.5, 64)
    assert tc.width == TrainConfig.quick().width  # applied on top of the quick preset
    assert override(WorldConfig(), ["actions=none"], "--world-option").actions is None


def test_no_options_is_the_preset_and_the_key_follows_the_change():
    wc = WorldConfig()
    assert override(wc, [], "--world-option") is wc
    assert override(wc, ["noise=6.0"], "--world-option").key() == wc.key()  # same value, same cache
    assert override(wc, ["noise=7"], "--world-option").key() != wc.key()


@pytest.mark.parametrize("option, match", [
    ("nope=1", "unknown key 'nope'; choose from"),
    ("noise", "write KEY=VALUE"),
    ("=3", "write KEY=VALUE"),
    ("noise=loud", "noise: 'loud' is not a valid float"),
    ("n_train=1.5", "n_train: '1.5' is not a valid int"),
    ("noise=-1", "noise: -1.0 is negative"),
    ("shake=inf", "not a finite number"),
    ("actions=push,,pull", "empty item"),
])
def test_bad_world_options_name_the_value(option, match):
    with pytest.raises(CatsplitError, match=match):
        override(WorldConfig(), [option], "--world-option")


def test_bad_train_options_name_the_value():
    with pytest.raises(CatsplitError, match="multiscale: 'maybe' is not a boolean; write true or false"):
        override(TrainConfig(), ["multiscale=maybe"], "--train-option")
    with pytest.raises(CatsplitError, match="dim is given twice"):
        override(TrainConfig(), ["dim=64", "dim=128"], "--train-option")


def test_reserved_keys_are_refused_before_anything_else():
    why = {"seed": "the world's seed has its own flag; use --world-seed"}
    # even next to a malformed option, and with spaces or no value, the reserved key is what is reported
    for options in (["seed=3"], ["noise=oops", " seed = 1"], ["seed"]):
        with pytest.raises(CatsplitError, match=r"^--world-option seed=\.\.\.: the world's seed has its own flag; use --world-seed$"):
            override(WorldConfig(), options, "--world-option", reserved=why)
    assert override(WorldConfig(), ["noise=7"], "--world-option", reserved=why).noise == 7
