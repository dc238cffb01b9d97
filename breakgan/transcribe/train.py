"""Synthesize a training set from the GMD train split, train TranscribeNet on CPU, tune per-head
thresholds on separately synthesized train-split clips, export safetensors + metadata.

Run: python -m breakgan.transcribe.train --groove /work/shared/data/groove --work DIR --out FILE
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

import numpy as np

from breakgan.transcribe import features as F
from breakgan.transcribe.model import HEADS

TRAIN_SOUNDFONTS = ("timgm6mb", "/usr/share/sounds/sf2/FluidR3_GM.sf2")


def _font(name: str):
    return None if name == "timgm6mb" else name


def synthesize_set(groove_root, n_clips: int, clip_s: float, seed: int, soundfonts=TRAIN_SOUNDFONTS,
                   split: str = "train", accompaniment_p: float = 0.75, hydrogen_kits: bool = True,
                   synth_accompaniment: bool = True, accompaniment_db: tuple[float, float] = (-12.0, 6.0),
                   keep_audio: bool = False, rate: int = F.SR):
    """-> features (n, frames, mels) float16, onset targets (n, frames, heads) float16, velocity (same),
    and the raw labels per clip; with keep_audio, also the clips' samples (n, samples) float16 at `rate`
    (synthesized at `rate`; the features from them brought to the networks' 16 kHz)."""
    from breakgan.transcribe.synthesis import KitSynth, MelodicSynth, groove_files, groove_notes, make_clip, notes_window

    rng = np.random.default_rng(seed)
    files = groove_files(groove_root, split)
    weights = np.array([min(g.duration, 60.0) for g in files])
    weights /= weights.sum()
    synths = [KitSynth(_font(s), rate) for s in soundfonts]
    kits = [(k, p) for k in synths for p in k.presets]
    if hydrogen_kits:
        from breakgan.transcribe.hydrogen import HydrogenKit, available_kits
        kits += [HydrogenKit(p, rate) for p in available_kits()]
    melodic = [MelodicSynth(_font(s), rate) for s in soundfonts]
    if synth_accompaniment:  # as likely as each SoundFont's instruments
        from breakgan.transcribe.synthesis import SynthAccompaniment
        melodic.append(SynthAccompaniment(np.random.default_rng(seed + 7), rate))
    frames = int(round(clip_s * F.FPS)) + 1
    X = np.zeros((n_clips, frames, F.N_MELS), np.float16)
    Y = np.zeros((n_clips, frames, len(HEADS)), np.float16)
    V = np.zeros((n_clips, frames, len(HEADS)), np.float16)
    A = np.zeros((n_clips, int(round(clip_s * rate)) if keep_audio else 0), np.float16)
    labels_all = []
    cache: dict = {}
    for i in range(n_clips):
        g = files[int(rng.choice(len(files), p=weights))]
        if g.path not in cache:
            cache[g.path] = groove_notes(g.path)
        notes = cache[g.path]
        start = float(rng.uniform(0, max(0.0, g.duration - clip_s)))
        acc = float(rng.uniform(*accompaniment_db)) if rng.random() < accompaniment_p else None
        y, labels = make_clip(notes_window(notes, start, clip_s), g.bpm, clip_s, kits,
                              melodic[int(rng.integers(len(melodic)))], rng, accompaniment=acc, head_gain_db=6.0)
        X[i] = F.log_mel(F.to_model_rate(y, rate))[:frames]
        if keep_audio:
            A[i, :min(len(y), A.shape[1])] = y[:A.shape[1]]
        for t, h, v in labels:
            f = int(round(t * F.FPS))
            if 0 <= f < frames:
                Y[i, f, h] = 1.0
                V[i, f, h] = max(V[i, f, h], v / 127.0)
                for g2 in (f - 1, f + 1):
                    if 0 <= g2 < frames:
                        Y[i, g2, h] = max(Y[i, g2, h], 0.3)
        labels_all.append(labels)
    for m in melodic:
        m.close()
    return (X, Y, V, labels_all, A) if keep_audio else (X, Y, V, labels_all)


def train(X, Y, V, *, minutes: float, seed: int, threads: int = 2, batch: int = 16, crop: int = 400,
          log=print, init=None, lr: float = 2e-3, hidden: int = 128):
    import torch

    from breakgan.transcribe.model import TranscribeNet

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    if init is not None:  # continue from an exported model (a second session of CPU time)
        from breakgan.transcribe.model import load_model
        model, _ = load_model(init)
    else:
        model = TranscribeNet(hidden=hidden)
        flat = X.reshape(-1, X.shape[-1]).astype(np.float32)
        model.mean.copy_(torch.from_numpy(flat.mean(0)))
        model.std.copy_(torch.from_numpy(flat.std(0) + 1e-3))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    pos = (Y == 1).reshape(-1, Y.shape[-1]).mean(0).astype(np.float32)
    pos_weight = torch.from_numpy(np.clip(0.25 / (pos + 1e-4), 1.0, 30.0))
    bce = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight, reduction="mean")
    t0 = time.time()
    budget = minutes * 60
    step, losses = 0, []
    model.train()
    while time.time() - t0 < budget:
        frac = (time.time() - t0) / budget
        for gparam in opt.param_groups:
            gparam["lr"] = lr * 0.5 * (1 + np.cos(np.pi * min(frac, 1.0)))
        idx = rng.integers(len(X), size=batch)
        off = rng.integers(0, X.shape[1] - crop + 1, size=batch)
        xb = torch.from_numpy(np.stack([X[i, o:o + crop] for i, o in zip(idx, off)]).astype(np.float32))
        yb = torch.from_numpy(np.stack([Y[i, o:o + crop] for i, o in zip(idx, off)]).astype(np.float32))
        vb = torch.from_numpy(np.stack([V[i, o:o + crop] for i, o in zip(idx, off)]).astype(np.float32))
        logits, vel = model(xb)
        mask = (yb == 1).float()
        loss = bce(logits, yb) + 2.0 * ((vel - vb) ** 2 * mask).sum() / (mask.sum() + 1)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 3.0)
        opt.step()
        losses.append(loss.item())
        step += 1
        if step % 100 == 0:
            log(f"step {step}  loss {np.mean(losses[-100:]):.4f}  {time.time() - t0:.0f}s")
    model.eval()
    return model, {"train_steps": step, "train_seconds": round(time.time() - t0, 1),
                   "final_loss": float(np.mean(losses[-100:])) if losses else None}


def activations(model, X) -> np.ndarray:
    import torch

    with torch.no_grad():
        logits, _ = model(torch.from_numpy(X.astype(np.float32)))
    return torch.sigmoid(logits).numpy()


def tune_thresholds(acts: np.ndarray, labels_all, grid=np.arange(0.15, 0.99, 0.05)) -> tuple[list, list]:
    """Per head, the threshold with the best F (+-50 ms) over the clips -> thresholds, Fs."""
    from breakgan.transcribe.peaks import match, pick, prf

    best_t, best_f = [], []
    for h in range(len(HEADS)):
        scores = []
        for thr in grid:
            tp = fp = fn = 0
            for a, labels in zip(acts, labels_all):
                ref = [t for t, hh, _ in labels if hh == h]
                est, _ = pick(a[:, h], float(thr))
                r = match(ref, est)
                tp, fp, fn = tp + r[0], fp + r[1], fn + r[2]
            scores.append(prf(tp, fp, fn)[2])
        k = int(np.argmax(scores))
        best_t.append(round(float(grid[k]), 3))
        best_f.append(round(float(scores[k]), 3))
    return best_t, best_f


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--groove", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--clips", type=int, default=450)
    ap.add_argument("--tune-clips", type=int, default=60)
    ap.add_argument("--clip-s", type=float, default=8.0)
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=2, help="processes synthesizing the training set")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--extra-data", nargs="*", default=[], help="more training sets (.npz) to train on as well")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--accompaniment-p", type=float, default=0.75, help="share of clips with an accompaniment")
    ap.add_argument("--accompaniment-db", type=float, nargs=2, default=(-12.0, 6.0), metavar=("LO", "HI"),
                    help="its level against the drums, drawn uniformly in dB")
    ap.add_argument("--init", default=None, help="continue training this exported model")
    ap.add_argument("--lr", type=float, default=2e-3)
    a = ap.parse_args(argv)
    if not 0.0 <= a.accompaniment_p <= 1.0:
        ap.error(f"--accompaniment-p {a.accompaniment_p:g}: a share between 0 and 1")
    lo, hi = a.accompaniment_db
    if not (np.isfinite(lo) and np.isfinite(hi) and -60.0 <= lo <= hi <= 30.0):
        ap.error(f"--accompaniment-db {lo:g} {hi:g}: LO <= HI, both within -60..30 dB")
    if not (Path(a.groove) / "info.csv").is_file():
        ap.error(f"--groove {a.groove}: no info.csv there (the Groove MIDI Dataset folder)")
    if a.init:  # checked before the minutes of synthesis, not after
        from breakgan.errors import BreakganError
        from breakgan.transcribe.model import load_model
        try:
            members = load_model(a.init)[1].get("members", 1)
        except BreakganError as e:
            ap.error(f"--init: {e}")
        if members > 1:
            ap.error(f"--init {a.init}: an average of {members} networks; continue from one network's file")
    import torch

    torch.set_num_threads(a.threads)
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    mix = "" if (a.accompaniment_p, tuple(a.accompaniment_db)) == (0.75, (-12.0, 6.0)) else \
        f"_acc{a.accompaniment_p:g}_{a.accompaniment_db[0]:g}_{a.accompaniment_db[1]:g}"
    data = work / f"train_{a.clips}_{a.seed}{mix}.npz"
    t0 = time.time()
    if data.is_file():
        z = np.load(data, allow_pickle=False)
        X, Y, V = z["X"], z["Y"], z["V"]
    else:  # one shard per process (synthesis is single-threaded), each with its own seed
        from concurrent.futures import ProcessPoolExecutor

        sizes = [len(c) for c in np.array_split(np.arange(a.clips), a.jobs)]
        with ProcessPoolExecutor(a.jobs) as pool:
            shards = list(pool.map(functools.partial(synthesize_set, accompaniment_p=a.accompaniment_p,
                                                     accompaniment_db=tuple(a.accompaniment_db)),
                                   [a.groove] * a.jobs, sizes, [a.clip_s] * a.jobs,
                                   [a.seed * 100 + k for k in range(a.jobs)]))
        X, Y, V = (np.concatenate([sh[i] for sh in shards]) for i in range(3))
        np.savez(data, X=X, Y=Y, V=V)
    for extra in a.extra_data:  # sets synthesized by earlier sessions (other seeds): train on the union
        z = np.load(extra, allow_pickle=False)
        X, Y, V = (np.concatenate([A, z[k]]) for A, k in ((X, "X"), (Y, "Y"), (V, "V")))
    synth_s = time.time() - t0
    print(f"training set: {len(X)} clips x {a.clip_s:g} s, {synth_s:.0f} s to synthesize", flush=True)
    Xt, _, _, labels_t = synthesize_set(a.groove, a.tune_clips, a.clip_s, a.seed + 1000)
    model, info = train(X, Y, V, minutes=a.minutes, seed=a.seed + (1 if a.init else 0), threads=a.threads,
                        log=lambda s: print(s, flush=True), init=a.init, lr=a.lr, hidden=a.hidden)
    if a.init:  # the training record covers both sessions
        from breakgan.transcribe.model import load_model
        before = load_model(a.init)[1]["training"]
        info = {**info, "train_steps": before["train_steps"] + info["train_steps"],
                "train_seconds": round(before["train_seconds"] + info["train_seconds"], 1),
                "sessions": [{k: before[k] for k in ("train_steps", "train_seconds")},
                             {"train_steps": info["train_steps"], "train_seconds": info["train_seconds"], "lr": a.lr}]}
    thresholds, tuned_f = tune_thresholds(activations(model, Xt), labels_t)
    print("thresholds", dict(zip(HEADS, thresholds)), "F on tuning clips", dict(zip(HEADS, tuned_f)), flush=True)
    from breakgan.transcribe.hydrogen import available_kits
    from breakgan.transcribe.model import parameter_count, save_model

    meta = {"kind": "breakgan-transcribe", "version": 1, "heads": list(HEADS),
            "arch": {"n_mels": F.N_MELS, "channels": model.conv[0].out_channels,
                     "hidden": model.proj.out_features, "n_heads": len(HEADS)},
            "features": {"sr": F.SR, "hop": F.HOP, "n_fft": F.N_FFT, "n_mels": F.N_MELS, "fmin": F.FMIN,
                         "fmax": F.FMAX},
            "thresholds": thresholds, "tuning_f": tuned_f, "parameters": parameter_count(model),
            "training": {**info, "clips": len(X), "clip_s": a.clip_s, "audio_s": len(X) * a.clip_s,
                         "synthesis_s": round(synth_s, 1), "seed": a.seed, "threads": a.threads,
                         "soundfonts": [Path(s).name if s != "timgm6mb" else "TimGM6mb.sf2" for s in TRAIN_SOUNDFONTS],
                         "hydrogen_kits": [p.name for p in available_kits()],
                         "groove_split": "train"}}
    save_model(model, a.out, meta)
    (work / "meta.json").write_text(json.dumps(meta, indent=1))
    print("saved", a.out, flush=True)


if __name__ == "__main__":
    main()
