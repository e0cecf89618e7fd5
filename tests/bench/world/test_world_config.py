"""catsplit.bench.world.config: WorldConfig's presets and cache key."""
from catsplit.bench import world as W


def test_config_presets_and_key():
    full, quick = W.WorldConfig(), W.WorldConfig.quick()
    assert (full.n_train, full.n_val, full.n_test) == (150, 30, 40)
    assert quick.n_train < full.n_train and quick.n_test >= 10
    assert full.key() == W.WorldConfig().key() != W.WorldConfig(seed=1).key()
    assert W.WorldConfig.quick(seed=2).seed == 2
