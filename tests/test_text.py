"""catsplit.text: calling text encoders (what they return is checked, each text embedded once), prompt templates
and a text head's rows, and the warning about subs the encoder cannot tell apart (NearDuplicateWarning), which
points at the caller's line."""

import warnings

import numpy as np
import pytest
import torch

import catsplit
from catsplit import CatsplitError, SplitConfig, load_head
from catsplit.text import CachedEncoder, NearDuplicateWarning, encode, lower_first, text_rows, with_templates

COARSE = "Pushing something"
FAST = SplitConfig(max_steps=20)
RAW = SplitConfig(normalise_modifiers=False)  # modifiers encoded as written


@pytest.mark.parametrize(
    "bad_encoder, message",
    [
        (lambda texts: np.ones((len(texts) + 1, 8)), "returned shape"),
        (lambda texts: np.ones((len(texts),)), "returned shape"),
        (lambda texts: np.full((len(texts), 8), np.nan), "NaN or inf"),
        (lambda texts: np.zeros((len(texts), 8)), "all-zero"),
        ("not callable", "must be callable"),
    ],
)
def test_bad_encoders(head_and_subs, bad_encoder, message):
    head, subs = head_and_subs
    with pytest.raises(CatsplitError, match=message):
        catsplit.split(head, bad_encoder, COARSE, subs, method="retrieval")


@pytest.mark.parametrize("encoder_out", [
    lambda ts: [["a"] * 3 for _ in ts],
    lambda ts: [[1.0] * (i + 1) for i, _ in enumerate(ts)],
    lambda ts: np.array([object()] * len(ts)),
    lambda ts: [[1 + 1j, 2] for _ in ts],
])
def test_encoder_output_that_is_not_numbers_is_named(head16_and_subs, encoder_out):
    head, subs = head16_and_subs
    with pytest.raises(CatsplitError, match="non-numeric or ragged"):
        catsplit.split(head, encoder_out, COARSE, subs)


def test_encoder_output_as_lists_or_tensors_still_works(head16_and_subs, encoder):
    head, subs = head16_and_subs
    as_list = catsplit.split(head, lambda ts: encoder(ts).tolist(), COARSE, subs, method="retrieval")
    as_tensor = catsplit.split(head, lambda ts: torch.from_numpy(encoder(ts)), COARSE, subs, method="retrieval")
    assert as_list.equals(catsplit.split(head, encoder, COARSE, subs, method="retrieval")) and as_list.equals(as_tensor)


def test_subs_with_identical_modifiers_are_warned_about(head16_and_subs, encoder):
    head, subs = head16_and_subs
    with pytest.warns(NearDuplicateWarning, match="identical texts.*'Pushing x' / 'Pushing something x' \\(both 'x'\\)"):
        new = catsplit.split(head, encoder, COARSE, ["Pushing x", "Pushing something x"], config=FAST)
    assert torch.equal(new.weight[-1], new.weight[-2])
    assert [tuple(p) for p in new.history[-1]["details"]["near_duplicates"]] == [("Pushing x", "Pushing something x", 1.0)]
    with pytest.warns(NearDuplicateWarning, match="identical texts"):
        catsplit.split(head, encoder, COARSE, subs[:2], modifiers={subs[0]: "left", subs[1]: "left"}, config=FAST)


def test_subs_the_encoder_cannot_tell_apart_are_named_in_a_warning(encoder, head_and_subs):
    """The bag-of-words encoder gives "from left to right" and "from right to left" one embedding (the modifiers
    as written: normalised, they differ; tests/test_modifiers.py)."""
    head, subs = head_and_subs
    lr, rl = subs[0], subs[1]
    for method in ("alignment", "text"):
        with pytest.warns(UserWarning, match="barely tells these apart") as caught:
            edited = catsplit.split(head, encoder, COARSE, subs, method=method, config=RAW)
        message = str(caught[0].message)
        assert caught[0].category is catsplit.text.NearDuplicateWarning  # filterable by category
        assert repr(lr) in message and repr(rl) in message and f"method={method!r}" in message
        assert "method='retrieval'" in message
        assert caught[0].filename == __file__  # points at the caller's split(...)
    assert list(edited.labels[-len(subs):]) == subs  # a warning, not a refusal
    with pytest.warns(UserWarning, match="barely tells these apart"):
        details = catsplit.split(head, encoder, COARSE, subs, method="alignment", config=RAW).history[-1]["details"]
    assert [tuple(pair[:2]) for pair in details["near_duplicates"]] == [(lr, rl)]  # recorded in the edit's history
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # texts the encoder separates: no warning; retrieval: never
        catsplit.split(head, encoder, COARSE, [lr] + subs[2:], method="alignment")
        catsplit.split(head, encoder, COARSE, subs, method="retrieval")


def test_the_tie_warning_points_at_the_callers_line_on_every_path(tmp_path, encoder, head_and_subs):
    """split_file reaches the methods through more catsplit frames than split; the warning still names the caller."""
    head, subs = head_and_subs
    head.save(tmp_path / "h.safetensors")
    for method in ("alignment", "text"):
        with pytest.warns(catsplit.text.NearDuplicateWarning) as caught:
            catsplit.split_file(tmp_path / "h.safetensors", tmp_path / f"{method}.safetensors", encoder, COARSE, subs,
                                method=method, config=RAW)
        assert [w.filename for w in caught] == [__file__]  # one warning, at this line's file
        details = load_head(tmp_path / f"{method}.safetensors").latest_record()["details"]
        assert [tuple(p[:2]) for p in details["near_duplicates"]] == [(subs[0], subs[1])]  # text records its ties too


def test_encode_embeds_each_text_once_and_normalises(encoder):
    out = encode(encoder, ["a b", "c", "a b"])
    assert encoder.calls == 1 and out.shape == (3, encoder.dim) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(out[0], out[2])
    np.testing.assert_allclose(out[1], encoder(["c"])[0] / np.linalg.norm(encoder(["c"])[0]), rtol=1e-6)
    with pytest.raises(CatsplitError, match="nothing to encode"):
        encode(encoder, [])


def test_cached_encoder_encodes_each_text_once_over_calls(encoder):
    cached = CachedEncoder(encoder)
    first = cached(["a b", "c"])
    again = cached(["c", "d", "a b"])  # only "d" is new
    assert encoder.calls == 2 and sorted(cached.cache) == ["a b", "c", "d"]
    np.testing.assert_array_equal(again[[0, 2]], first[[1, 0]])


def test_with_templates_averages_unit_embeddings_and_normalises_again(encoder):
    def unit(x):
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    got = with_templates(encoder, ["x y", "z"], ["a {}.", "{label}!"])  # "{label}" is a slot too
    want = [unit(unit(encoder([f"a {lab}.", f"{lab}!"])).mean(0)) for lab in ("x y", "z")]
    np.testing.assert_allclose(got, np.stack(want), atol=1e-6)
    np.testing.assert_allclose(with_templates(encoder, ["x y"], None), unit(encoder(["x y"])), atol=1e-6)


def test_text_rows_are_a_text_heads_rows(encoder):
    head = catsplit.text_head(["Pushing something", "Lifting something up"], encoder, templates=["a video of {}."])
    rows = text_rows(encoder, ["Lifting something up", "Dropping something"], head.templates)
    np.testing.assert_allclose(rows[0], head.weight[1].numpy(), atol=1e-6)
    want = encoder(["a video of dropping something."])[0]
    np.testing.assert_allclose(rows[1], want / np.linalg.norm(want), atol=1e-6)


def test_lower_first():
    assert lower_first("Pushing Something") == "pushing Something" and lower_first("") == "" and lower_first("x") == "x"


@pytest.mark.parametrize("value, dtype", [(1e20, np.float32), (1e-25, np.float32), (1e300, np.float64), (1e-300, np.float64)])
def test_embeddings_whose_norm_leaves_float32_come_out_as_unit_rows(value, dtype):
    """Squares of 1e20 overflow float32: the norm was inf and the row came out all zeros, with no warning
    (and 1e-25 underflowed to an 'all-zero embedding' error; float64 1e300 became inf when cast)."""
    import warnings

    enc = lambda texts: np.array([[value, value, 0.0], [1.0, 2.0, 2.0]][: len(texts)], dtype=dtype)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy overflow warning either
        emb = encode(enc, ["a", "b"])
    np.testing.assert_allclose(emb, [[2 ** -0.5, 2 ** -0.5, 0.0], [1 / 3, 2 / 3, 2 / 3]], rtol=1e-6)


def test_ordinary_embeddings_are_normalised_exactly_as_before():
    rows = np.random.default_rng(0).standard_normal((5, 7)).astype(np.float32)
    np.testing.assert_array_equal(encode(lambda t: rows[: len(t)], list("abcde")), rows / np.linalg.norm(rows, axis=1, keepdims=True))


class CompressedEncoder:
    """Every text at cosine about 0.9 to every other (one large shared direction, as multilingual-e5), except that
    the two `close` texts sit at cosine 0.98: far apart for this encoder, near duplicates by MiniLM's 0.97."""

    def __init__(self, close=("to the right", "to the left"), dim=64):
        self.dim, self.close, self.calls = dim, close, []

    def __call__(self, texts):
        self.calls.append(list(texts))
        rng = np.random.default_rng(0)
        shared, own = np.zeros(self.dim), rng.standard_normal(self.dim)
        shared[0] = 1.0
        own -= own[0] * shared
        own /= np.linalg.norm(own)
        out = []
        for t in texts:
            v = np.random.default_rng(int.from_bytes(t.encode()[:8].ljust(8, b"."), "little")).standard_normal(self.dim)
            v -= v[0] * shared
            v = own if t in self.close else v / np.linalg.norm(v)
            if t == self.close[1]:  # cosine 0.98 in the texts' own part
                w = np.random.default_rng(1).standard_normal(self.dim)
                w -= w[0] * shared + (w @ own) * own
                v = 0.8 * own + 0.6 * w / np.linalg.norm(w)
            out.append(3.0 * shared + v)  # cosine of unit parts c -> (9 + c) / 10
        return np.array(out, np.float32)


def test_the_near_duplicate_threshold_follows_the_encoders_background():
    from catsplit.text import NEAR_DUPLICATE, near_duplicate_threshold, near_duplicates

    enc = CompressedEncoder()
    emb = encode(enc, list(enc.close))
    assert 0.975 < float(emb[0] @ emb[1]) < 0.99  # above MiniLM's 0.97
    threshold = near_duplicate_threshold(enc)
    assert threshold > 0.99  # background about 0.9: 1 - 0.03 * 0.1
    assert near_duplicate_threshold(enc) == threshold and len(enc.calls) == 2  # measured once per encoder
    assert near_duplicates(list(enc.close), emb, ["a", "b"], enc) == ([], [])
    assert near_duplicates(list(enc.close), emb, ["a", "b"])[1]  # without the encoder: the fixed 0.97
    # an encoder that says its threshold is taken at its word; MiniLM's is the 0.97 the warnings always used
    enc.near_duplicate = 0.95
    assert near_duplicate_threshold(enc) == 0.95 and len(enc.calls) == 2
    from catsplit.encoders import MiniLMEncoder

    assert MiniLMEncoder.near_duplicate == NEAR_DUPLICATE == 0.97
    enc.near_duplicate = 1.5
    with pytest.raises(CatsplitError, match="near_duplicate must be a cosine in \\(0, 1\\], got 1.5"):
        near_duplicate_threshold(enc)
    assert near_duplicate_threshold(CachedEncoder(CompressedEncoder())) > 0.99  # a cache asks the encoder it wraps


def test_a_compressing_encoder_gets_no_false_tie_warning(head_and_subs):
    head, subs = head_and_subs
    lr, rl = subs[0], subs[1]
    enc = CompressedEncoder(close=("to the right", "to the left"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", NearDuplicateWarning)
        edited = catsplit.split(head, enc, COARSE, [lr, rl], modifiers={lr: "to the right", rl: "to the left"},
                                config=FAST)
    assert "near_duplicates" not in edited.history[-1].get("details", {})
    enc.near_duplicate = 0.97  # the old fixed threshold: the same split is warned about, with the threshold shown
    with pytest.warns(NearDuplicateWarning, match=r"cosine >= 0\.97\)"):
        catsplit.split(head, enc, COARSE, [lr, rl], modifiers={lr: "to the right", rl: "to the left"}, config=FAST)
