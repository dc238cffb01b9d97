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
