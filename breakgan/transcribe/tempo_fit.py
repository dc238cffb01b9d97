"""Fit the tempo chooser (`tempo.Chooser`, `assets/drums/tempo_chooser.safetensors`) on GMD train-split grooves.

The examples are what `drums transcribe` really sees: 30 s windows of train-split 4/4 beats (from the start,
and every 30 s up to 150 s into long takes) rendered with a kit that training never used (AVL "Red Zeppelin")
once alone and once with a bass + chords accompaniment (FluidR3) at the drums' RMS, transcribed by the
shipped network through the streaming path, then librosa's first guess on the onset envelope and
`tempo.candidates` of it. The chooser maximises the likelihood that a candidate within 4% of the file's tempo
wins (a softmax over each window's candidates). Windows with no right candidate count as wrong and do not
move the fit. Only the train split is read; the validation split stays for `benchmarks/transcribe.py`.
Figures: leave-one-drummer-out (the chooser fitted without a drummer's takes, measured on them).

    python -m breakgan.transcribe.tempo_fit --groove ../shared/data/groove --work /tmp/tempo_fit \\
        --out assets/drums/tempo_chooser.safetensors
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from breakgan.transcribe import features as F
from breakgan.transcribe import tempo as T
from breakgan.transcribe.model import HEADS

WINDOW_S = 30.0      # what the benchmark transcribes of each file
LAST_START_S = 150.0
KIT = "/usr/share/sounds/sf2/Red_Zeppelin_4_LV2.sf2"
ACCOMPANIMENT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
CONDITIONS = ("with_accompaniment", "drums_only")
HIDDEN, WEIGHT_DECAY, EPOCHS, LR = 8, 1e-1, 300, 3e-3  # chosen leave-one-drummer-out on these windows


def example(onsets: dict[str, np.ndarray], env: np.ndarray, bpm: float) -> tuple[np.ndarray, np.ndarray]:
    """A transcription's (onsets, envelope) -> (candidate features, which candidates are within 4% of bpm)."""
    guess = T.tempo_estimate(env)
    if guess is None:
        return np.zeros((0, len(T.FEATURES))), np.zeros(0, bool)
    tempi, feats = T.candidates(guess, onsets, len(env))
    return feats, np.abs(tempi - bpm) <= 0.04 * bpm


def fit(examples: list[tuple[np.ndarray, np.ndarray]], *, hidden: int = HIDDEN, weight_decay: float = WEIGHT_DECAY,
        epochs: int = EPOCHS, seed: int = 0) -> T.Chooser:
    """A chooser from (candidate features, right) examples: full-batch Adam on the softmax likelihood."""
    import torch

    usable = [(X, ok) for X, ok in examples if len(X) and ok.any()]
    if not usable:
        raise ValueError("no example has a right candidate")
    rows = np.concatenate([X for X, _ in usable])
    mean, std = rows.mean(0), rows.std(0) + 1e-6
    n, d = max(len(X) for X, _ in usable), rows.shape[1]
    X = torch.zeros(len(usable), n, d)
    valid = torch.zeros(len(usable), n, dtype=torch.bool)
    right = torch.zeros(len(usable), n, dtype=torch.bool)
    for i, (x, ok) in enumerate(usable):
        X[i, :len(x)] = torch.from_numpy((x - mean) / std).float()
        valid[i, :len(x)] = True
        right[i, :len(x)] = torch.from_numpy(ok)
    g = torch.Generator().manual_seed(seed)
    w1 = (torch.randn(d, hidden, generator=g) * 0.1).requires_grad_()
    b1 = (torch.randn(hidden, generator=g) * 0.1).requires_grad_()
    w2 = (torch.randn(hidden, generator=g) * 0.1).requires_grad_()
    opt = torch.optim.Adam([w1, b1, w2], lr=LR, weight_decay=weight_decay)
    for _ in range(epochs):
        s = (torch.tanh(X @ w1 + b1) @ w2).masked_fill(~valid, -1e9)
        loss = (torch.logsumexp(s, 1) - torch.logsumexp(s.masked_fill(~right, -1e9), 1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    t = [a.detach().double().numpy() for a in (w1, b1, w2)]
    return T.Chooser(mean, std, *t)


def right(examples, chooser: T.Chooser) -> int:
    """How many examples the chooser gets right (its best-scoring candidate is within 4%)."""
    return sum(bool(len(X) and ok[int(np.argmax(chooser.scores(X)))]) for X, ok in examples)


def windows(groove: str) -> list[tuple]:
    """(path, bpm, start s) of every window the fit uses: train split, 4/4 beats of at least 30 s."""
    from breakgan.transcribe.synthesis import groove_files

    files = [g for g in groove_files(groove, "train") if g.beat_type == "beat" and g.duration >= WINDOW_S]
    return [(g.path, g.bpm, float(s)) for g in files
            for s in np.arange(0.0, min(g.duration - WINDOW_S, LAST_START_S) + 1e-6, WINDOW_S)]


_worker: dict = {}


def _transcribe_window(job: tuple[int, Path, float, float, str, str | None]) -> str:
    """Render, transcribe and store one window (in a worker process); -> the file written."""
    i, path, bpm, start, work, model_path = job
    out = Path(work) / f"{i:04d}.npz"
    if out.is_file():
        return str(out)
    import torch

    from breakgan.transcribe.infer import transcribe_blocks
    from breakgan.transcribe.model import load_model
    from breakgan.transcribe.rescore import audio_rate
    from breakgan.transcribe.synthesis import KitSynth, MelodicSynth, accompanied, groove_notes, notes_window

    if not _worker:
        torch.set_num_threads(1)
        model, meta = load_model(model_path)
        rate = audio_rate(meta)  # rendered at the rate the rescorers hear; the networks get 16 kHz
        _worker.update(model=(model, meta), rate=rate, kit=KitSynth(KIT, rate, bank=0),
                       melodic=MelodicSynth(ACCOMPANIMENT, rate))
    model, meta = _worker["model"]
    rate = _worker["rate"]
    rng = np.random.default_rng([i, 77])
    drums, acc, _ = accompanied(notes_window(groove_notes(path), start, WINDOW_S), bpm, WINDOW_S,
                                _worker["kit"], _worker["melodic"], rng)
    scale = 0.9 / max(np.abs(drums + acc).max(), np.abs(drums).max(), 1e-9)
    arrays = {"bpm": np.array(bpm)}
    for cond, y in zip(CONDITIONS, (drums + acc, drums)):
        y = (y * scale).astype(np.float32)
        tr = transcribe_blocks([F.to_model_rate(y, rate)], model, meta, high_blocks=[y] if rate > F.SR else None)
        arrays[f"{cond}/env"] = tr.envelope
        arrays.update({f"{cond}/{h}": tr.onsets[h] for h in HEADS})
    tmp = out.with_suffix(".part.npz")
    np.savez(tmp, **arrays)
    tmp.replace(out)
    return str(out)


def transcribed(groove: str, work: Path, model_path: str | None, jobs: int) -> list[dict]:
    """Every window transcribed (cached under work): dicts of drummer, start, condition, onsets, env, bpm."""
    import multiprocessing as mp

    from rich.progress import track

    work.mkdir(parents=True, exist_ok=True)
    wins = windows(groove)
    todo = [(i, p, bpm, s, str(work), model_path) for i, (p, bpm, s) in enumerate(wins)]
    T.compile_kernels()
    with mp.get_context("spawn").Pool(jobs) as pool:
        files = list(track(pool.imap(_transcribe_window, todo), total=len(todo), description="transcribing windows"))
    out = []
    for (p, bpm, s), f in zip(wins, files):
        z = np.load(f)
        for cond in CONDITIONS:
            out.append({"drummer": Path(p).parent.parent.name, "start": s, "condition": cond, "bpm": bpm,
                        "env": z[f"{cond}/env"], "onsets": {h: z[f"{cond}/{h}"] for h in HEADS}})
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--groove", required=True, help="the Groove MIDI Dataset folder (info.csv); train split only")
    ap.add_argument("--work", required=True, help="folder for the transcribed windows (reused when run again)")
    ap.add_argument("--model", default=None, help="transcription model (default: the shipped one)")
    ap.add_argument("--out", default=None, help="write the fitted chooser here (.safetensors)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if not (Path(a.groove) / "info.csv").is_file():
        ap.error(f"--groove {a.groove}: no info.csv there (the Groove MIDI Dataset folder)")
    for font in (KIT, ACCOMPANIMENT):
        if not Path(font).is_file():
            ap.error(f"{font}: not installed (apt-get install avldrums.lv2-soundfont fluid-soundfont-gm)")
    if not 1 <= a.jobs <= 64:
        ap.error(f"--jobs {a.jobs}: 1..64")
    rows = transcribed(a.groove, Path(a.work), a.model, a.jobs)
    for r in rows:
        r["X"], r["ok"] = example(r["onsets"], r["env"], r["bpm"])
    ex = lambda rs: [(r["X"], r["ok"]) for r in rs]  # noqa: E731
    drummers = sorted({r["drummer"] for r in rows})
    held = {(c, first): 0 for c in CONDITIONS for first in (True, False)}
    for d in drummers:
        chooser = fit(ex([r for r in rows if r["drummer"] != d]), seed=a.seed)
        for c in CONDITIONS:
            mine = [r for r in rows if r["drummer"] == d and r["condition"] == c]
            held[c, False] += right(ex(mine), chooser)
            held[c, True] += right(ex([r for r in mine if r["start"] == 0.0]), chooser)
    chooser = fit(ex(rows), seed=a.seed)
    total = {c: sum(r["condition"] == c for r in rows) for c in CONDITIONS}
    first = {c: sum(r["condition"] == c and r["start"] == 0.0 for r in rows) for c in CONDITIONS}
    guess = {c: sum(bool(len(r["X"])) and abs(T.tempo_estimate(r["env"]) - r["bpm"]) <= 0.04 * r["bpm"]
                    for r in rows if r["condition"] == c) for c in CONDITIONS}
    report = {c: {"windows": total[c], "right_in_sample": right(ex([r for r in rows if r["condition"] == c]), chooser),
                  "right_leave_one_drummer_out": held[c, False],
                  "first_windows": first[c], "first_right_leave_one_drummer_out": held[c, True],
                  "librosa_guess_right": guess[c], "no_right_candidate": sum(not r["ok"].any() for r in rows
                                                                             if r["condition"] == c)}
              for c in CONDITIONS}
    for c, v in report.items():
        print(c, v)
    if a.out:
        chooser.meta = {"fitted_on": f"{len(rows) // 2} windows x {len(CONDITIONS)} conditions of GMD train-split "
                                     f"4/4 beats; kit {Path(KIT).name}, accompaniment {Path(ACCOMPANIMENT).name}",
                        "model": a.model or "shipped", "seed": a.seed, "hidden": HIDDEN, "epochs": EPOCHS,
                        "weight_decay": WEIGHT_DECAY, "report": report}
        print("wrote", chooser.save(a.out))


if __name__ == "__main__":
    sys.exit(main())
