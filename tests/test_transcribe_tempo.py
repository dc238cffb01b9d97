"""The tempo chooser's drum rules, on onset lists written here (no audio, no model)."""

import numpy as np
import pytest

from breakgan.transcribe import features as F
from breakgan.transcribe.tempo import choose_tempo


def rock(bpm: float, bars: int = 12, seed: int = 0) -> dict[str, np.ndarray]:
    """Kick on 1 and the "and" of 3, snare on 2 and 4, closed hats on 8ths, +-8 ms of human timing."""
    rng = np.random.default_rng(seed)
    beat = 60.0 / bpm
    pos = {"kick": [0, 2.5], "snare": [1, 3], "hihat_closed": [i / 2 for i in range(8)]}
    out = {}
    for part, beats in pos.items():
        t = np.array([(b + 4 * k) * beat for k in range(bars) for b in beats])
        t = np.sort(t + rng.normal(0, 0.008, len(t)))
        out[part] = np.stack([np.maximum(t, 0), np.full(len(t), 100.0)], 1)
    return out


@pytest.mark.parametrize("bpm", [84.0, 120.0, 150.0])
@pytest.mark.parametrize("ratio", [0.5, 0.75, 1.0, 4 / 3, 2.0])
def test_metrical_relatives_of_the_tempo_come_back_to_it(bpm, ratio):
    onsets = rock(bpm)
    frames = int((12 * 4 * 60 / bpm + 1) * F.FPS)
    assert choose_tempo(bpm * ratio, onsets, frames) == pytest.approx(bpm, rel=1e-6)


def test_without_onsets_only_the_prior_speaks():
    empty = {"kick": np.zeros((0, 2)), "snare": np.zeros((0, 2))}
    assert choose_tempo(100.0, empty, 3000) == pytest.approx(100.0)


def test_the_fit_learns_the_candidate_the_deciding_feature_marks():
    from breakgan.transcribe.tempo_fit import fit, right

    rng = np.random.default_rng(1)

    def examples(n):
        out = []
        for _ in range(n):  # feature 0 is larger on the right candidate; feature 1 is noise
            X = rng.normal(size=(5, 2))
            k = int(rng.integers(5))
            X[k, 0] += 4.0
            out.append((X, np.arange(5) == k))
        return out

    chooser = fit(examples(60), epochs=200)
    held_out = examples(60)
    assert right(held_out, chooser) >= 55
    flipped = type(chooser)(chooser.mean, chooser.std, chooser.w1, chooser.b1, -chooser.w2)
    assert right(held_out, flipped) < 10


def envelope(onsets: dict[str, np.ndarray], frames: int) -> np.ndarray:
    env = np.zeros(frames, np.float32)
    for part, w in (("kick", 1.0), ("snare", 1.0), ("hihat_closed", 0.5)):
        idx = np.round(onsets[part][:, 0] * F.FPS).astype(int)
        np.add.at(env, idx[idx < frames], w)
    return np.convolve(env, [0.2, 0.6, 1.0, 0.6, 0.2], "same").astype(np.float32)


def test_a_rock_groove_offers_its_tempo_among_the_candidates():
    from breakgan.transcribe.tempo import FEATURES
    from breakgan.transcribe.tempo_fit import example

    onsets = rock(120.0)
    feats, ok = example(onsets, envelope(onsets, int(24 * F.FPS)), 120.0)
    assert feats.shape[1] == len(FEATURES) and np.isfinite(feats).all()
    assert ok.sum() == 1


def test_a_damaged_chooser_file_is_one_clean_error(tmp_path):
    from breakgan.errors import BreakganError
    from breakgan.transcribe.tempo import load_chooser

    bad = tmp_path / "chooser.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(BreakganError, match="chooser.safetensors: not a tempo chooser"):
        load_chooser(bad)


def test_the_shipped_chooser_round_trips(tmp_path):
    from breakgan.transcribe.tempo import load_chooser

    shipped = load_chooser()
    copy = load_chooser(shipped.save(tmp_path / "copy.safetensors"))
    X = np.random.default_rng(0).normal(size=(9, len(shipped.mean)))
    np.testing.assert_allclose(copy.scores(X), shipped.scores(X), rtol=1e-5, atol=1e-5)
    assert shipped.meta["report"]["with_accompaniment"]["windows"] > 100
