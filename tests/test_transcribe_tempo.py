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


def test_fitted_weights_pick_the_candidate_the_deciding_feature_marks():
    from breakgan.transcribe.tempo_fit import fit, right

    rng = np.random.default_rng(1)
    examples = []
    for _ in range(60):  # feature 0 is larger on the right candidate; feature 1 is noise
        X = rng.normal(size=(5, 2))
        k = int(rng.integers(5))
        X[k, 0] += 4.0
        examples.append((X, np.arange(5) == k))
    w = fit(examples)
    assert w[0] > 5 * abs(w[1])
    assert right(examples, w) >= 57
    assert right(examples, (0.0, 1.0)) < 30


def test_a_rock_groove_offers_its_tempo_among_the_candidates():
    from breakgan.transcribe.tempo import FEATURES
    from breakgan.transcribe.tempo_fit import example

    onsets = rock(120.0)
    feats, ok = example(onsets, int(24 * F.FPS), 120.0)
    assert feats.shape[1] == len(FEATURES) and np.isfinite(feats).all()
    assert ok.sum() == 1
