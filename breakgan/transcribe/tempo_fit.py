"""Fit the tempo chooser's weights (`tempo.WEIGHTS`) on GMD train-split grooves.

Each example is a 30 s window of a train performance: its drum onsets as the transcription would give
them (12% of hits dropped, 10% more kicks, snares and hats at random times, 4 ms of jitter), the
onset envelope those make, librosa's first guess on it, and `tempo.candidates` of that guess. The
weights maximise the likelihood that the candidate within 4% of the file's tempo wins (a conditional
logit: a softmax over each file's candidates, L2-regularised). Files with no right candidate count as
wrong and do not move the fit. Only the train split is read; the validation split stays for
`benchmarks/transcribe.py`.

    python -m breakgan.transcribe.tempo_fit --groove ../shared/data/groove
"""

from __future__ import annotations

import argparse

import numpy as np

from breakgan.transcribe import features as F
from breakgan.transcribe import tempo as T
from breakgan.transcribe.model import HEADS

WINDOW_S = 30.0      # what the benchmark transcribes of each file
DROP, EXTRA, JITTER_S = 0.12, 0.10, 0.004


def noisy_onsets(notes, heads: np.ndarray, start: float, length: float, rng: np.random.Generator
                 ) -> dict[str, np.ndarray]:
    """(time, pitch, velocity) notes -> onsets per head within [start, start + length), as a transcription
    with misses, false hits and jitter would give them."""
    found: dict[str, list] = {h: [] for h in HEADS}
    for t, p, v in notes:
        if start <= t < start + length and 0 <= p < len(heads) and heads[p] >= 0 and rng.random() >= DROP:
            found[HEADS[heads[p]]].append((t - start + rng.normal(0.0, JITTER_S), float(v)))
    for h in HEADS[:3]:  # kick, snare, closed hat: where false hits matter for the tempo
        found[h] += [(float(x), 60.0) for x in rng.uniform(0.0, length, int(len(found[h]) * EXTRA))]
    return {h: np.asarray(sorted(v), np.float64).reshape(-1, 2) for h, v in found.items()}


def onset_envelope(onsets: dict[str, np.ndarray], frames: int) -> np.ndarray:
    """The envelope a transcription would give for these onsets (`infer.TEMPO_WEIGHTS`, a 50 ms peak)."""
    from breakgan.transcribe.infer import TEMPO_WEIGHTS

    env = np.zeros(frames, np.float32)
    for k, h in enumerate(HEADS):
        idx = np.round(onsets.get(h, np.zeros((0, 2)))[:, 0] * F.FPS).astype(int)
        np.add.at(env, idx[(idx >= 0) & (idx < frames)], TEMPO_WEIGHTS[k])
    return np.convolve(env, [0.2, 0.6, 1.0, 0.6, 0.2], "same").astype(np.float32)


def example(onsets: dict[str, np.ndarray], frames: int, bpm: float) -> tuple[np.ndarray, np.ndarray]:
    """-> (candidate features, which candidates are right within 4%)."""
    import librosa

    env = onset_envelope(onsets, frames)
    guess = float(np.atleast_1d(librosa.feature.tempo(onset_envelope=env, sr=F.SR, hop_length=F.HOP,
                                                      start_bpm=T.START_BPM))[0])
    tempi, feats = T.candidates(guess, onsets, frames)
    return feats, np.abs(tempi - bpm) <= 0.04 * bpm


def fit(examples: list[tuple[np.ndarray, np.ndarray]], l2: float = 1e-2) -> np.ndarray:
    """Conditional-logit weights over candidate features (see the module docstring)."""
    import torch

    usable = [(torch.from_numpy(X), torch.from_numpy(ok)) for X, ok in examples if ok.any()]
    if not usable:
        raise ValueError("no example has a right candidate")
    w = torch.zeros(usable[0][0].shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        nll = sum(torch.logsumexp(X @ w, 0) - torch.logsumexp((X @ w)[ok], 0) for X, ok in usable)
        loss = nll / len(usable) + l2 * w.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy()


def right(examples, weights) -> int:
    """How many examples the weights get right (the best-scoring candidate is within 4%)."""
    return sum(bool(len(X) and ok[int(np.argmax(X @ np.asarray(weights)))]) for X, ok in examples)


def main(argv=None) -> None:
    from breakgan.transcribe.synthesis import groove_files, groove_notes, pitch_heads

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--groove", required=True, help="the Groove MIDI Dataset folder (info.csv); train split only")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    from pathlib import Path

    if not (Path(a.groove) / "info.csv").is_file():
        ap.error(f"--groove {a.groove}: no info.csv there (the Groove MIDI Dataset folder)")
    rng = np.random.default_rng(a.seed)
    heads = pitch_heads()
    files = [g for g in groove_files(a.groove, "train") if g.beat_type == "beat" and g.duration >= 16]
    examples, names = [], []
    for g in files:
        notes = groove_notes(g.path)
        # the start (as the benchmark takes it) and, in long takes, one window from the middle
        starts = [0.0] + ([float(rng.uniform(0.0, g.duration - WINDOW_S))] if g.duration > 2 * WINDOW_S else [])
        for s in starts:
            length = min(WINDOW_S, g.duration - s)
            examples.append(example(noisy_onsets(notes, heads, s, length, rng), int(length * F.FPS), g.bpm))
            names.append(g.path.name)
    # two folds by file, to show how far the fitted weights carry to files they were not fitted on
    order = sorted(set(names))
    fold = {n: i % 2 for i, n in enumerate(rng.permutation(order))}
    held = 0
    for f in (0, 1):
        w = fit([e for e, n in zip(examples, names) if fold[n] != f])
        held += right([e for e, n in zip(examples, names) if fold[n] == f], w)
    w = fit(examples)
    n = len(examples)
    print(f"{n} windows of {len(files)} train grooves; right within 4%: current WEIGHTS {right(examples, T.WEIGHTS)}, "
          f"fitted {right(examples, w)} (2-fold, files held out: {held})")
    print("WEIGHTS =", tuple(round(float(x), 2) for x in w), " # ", ", ".join(T.FEATURES))


if __name__ == "__main__":
    main()
