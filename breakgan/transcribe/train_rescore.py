"""Train rescorers (rescore.py) for some heads of a transcription model and attach them to it.

The candidates are the model's own peaks above rescore.CANDIDATE_THRESHOLD on clips synthesized from the GMD
train split (new random draws: other windows, kit mixes and accompaniments than the network trained on);
a candidate is positive when the one-to-one +-50 ms matching pairs it with a true hit of its head. The
thresholds written are placeholders (0.5): `benchmarks/transcribe_dev.py --write` chooses them on the
development set, as it does for the network's heads.

Run: python -m breakgan.transcribe.train_rescore --groove G --work DIR --model BASE.safetensors \
         --heads kick snare hihat_closed --out OUT.safetensors
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

import numpy as np

from breakgan.transcribe import features as F
from breakgan.transcribe import rescore as R

BATCH = 128


def synthesized(groove: str, work: Path, seed: int, clips: int,
                accompaniment_p: float = 0.9, rate: int = F.SR) -> tuple[np.ndarray, np.ndarray, list]:
    """One set of 8 s clips with their audio at `rate` (by default 90% with an accompaniment at -9..+6 dB),
    cached in `work`."""
    from breakgan.transcribe.train import synthesize_set

    share = ("" if accompaniment_p == 0.9 else f"_acc{accompaniment_p:g}") + ("" if rate == F.SR else f"_{rate}hz")
    path = work / f"rescore_set_{seed}_{clips}{share}.npz"
    if path.is_file():
        z = np.load(path, allow_pickle=False)
        return z["X"], z["A"], json.loads(path.with_suffix(".json").read_text())
    X, _, _, labels, A = synthesize_set(groove, clips, 8.0, seed, accompaniment_p=accompaniment_p,
                                        accompaniment_db=(-9.0, 6.0), keep_audio=True, rate=rate)
    np.savez(path, X=X, A=A)
    path.with_suffix(".json").write_text(json.dumps(labels))
    return X, A, labels


def candidate_set(model, meta: dict, A, labels, head: str, high: bool = False,
                  rate: int = F.SR) -> dict[str, np.ndarray]:
    """The patches of `head`'s candidates in clips (A audio at `rate`, labels) and their 0/1 targets (with
    `high`, the fine high band's patches too, heard at `rate`); the activations and features are those
    inference computes (infer.whole_signal, with the model's frame phases, on the audio at 16 kHz)."""
    from breakgan.transcribe.infer import whole_signal
    from breakgan.transcribe.peaks import match_pairs, peak_frames

    h = list(meta["heads"]).index(head)
    out = {k: [] for k in ("low", "mel", "acts", "y", "peak", *(("high",) if high else ()))}
    for clip, lab in zip(A, labels):
        clip = clip.astype(np.float32)
        audio = F.to_model_rate(clip, rate)
        x, a, _ = whole_signal(model, meta, audio)
        frames, times, peaks = peak_frames(a[:, h], R.CANDIDATE_THRESHOLD)
        ref = np.array([t for t, hh, _ in lab if hh == h])
        y = np.zeros(len(frames), np.float32)
        y[match_pairs(ref, times)[:, 1]] = 1.0
        low, mel, act = R.patches(audio, 0, x, 0, a, 0, frames)
        hb = [R.high_patches(clip, 0, frames, rate).astype(np.float16)] if high else []  # float16: gigabytes
        for k, v in (("low", low), ("mel", mel), ("acts", act), ("y", y), ("peak", peaks), *(("high", x) for x in hb)):
            out[k].append(v)
    return {k: np.concatenate(v) for k, v in out.items()}


def fit(data: dict[str, np.ndarray], head: int, *, minutes: float, seed: int = 0, hidden: int = 128,
        log=print) -> tuple[R.RescoreNet, dict]:
    """BCE on the candidates (a tenth held out to report accuracy), AdamW, cosine to 0 over `minutes`;
    the activations are scaled by 0.7..1.1 per candidate, since on kits the network has not heard its
    activations are lower than on the training kits these candidates come from."""
    import torch

    torch.manual_seed(seed)
    low, mel, acts, y = (torch.from_numpy(data[k].astype(np.float32, copy=False)) for k in ("low", "mel", "acts", "y"))
    high = torch.from_numpy(data["high"]) if "high" in data else None   # float16: made float32 per batch
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(y))
    held, train = perm[:len(y) // 10], perm[len(y) // 10:]
    net = R.RescoreNet(acts.shape[2], hidden, high=high is not None)

    def inputs(idx, a=None):
        x = (low[idx], mel[idx], acts[idx] if a is None else a)
        return x if high is None else (*x, high[idx].float())
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-4)
    t0, step, budget = time.time(), 0, minutes * 60

    def held_accuracy() -> tuple[float, float]:
        if len(held) == 0:
            return float("nan"), float("nan")
        net.eval()
        with torch.no_grad():
            p = torch.cat([torch.sigmoid(net(*inputs(held[i:i + 512]))) for i in range(0, len(held), 512)])
        net.train()
        ours = float(((p > 0.5).float() == y[held]).float().mean())
        network = float(((acts[held, R.BEFORE, head] > 0.75).float() == y[held]).float().mean())
        return ours, network

    while time.time() - t0 < budget:
        idx = torch.from_numpy(rng.choice(train, BATCH))
        a = acts[idx] * torch.empty(len(idx), 1, 1).uniform_(0.7, 1.1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(*inputs(idx, a)), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        for g in opt.param_groups:
            g["lr"] = 1e-3 * 0.5 * (1 + np.cos(np.pi * min(1.0, (time.time() - t0) / budget)))
        if step % 500 == 0:
            ours, network = held_accuracy()
            log(f"step {step}  loss {loss.item():.4f}  held-out accuracy {ours:.4f} "
                f"(the network's peak > 0.75: {network:.4f})  {time.time() - t0:.0f}s")
    ours, network = held_accuracy()
    net.eval()
    return net, {"steps": step, "seconds": round(time.time() - t0, 1), "candidates": int(len(y)),
                 "positive_share": round(float(y.mean()), 4), "held_out_accuracy": round(ours, 4),
                 "network_accuracy": round(network, 4)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--groove", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--model", required=True, help="the transcription model to add rescorers to")
    ap.add_argument("--heads", nargs="+", default=["kick", "snare", "hihat_closed"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[501, 502, 503, 504], help="one synthesized set each")
    ap.add_argument("--clips", type=int, default=700, help="clips per set")
    ap.add_argument("--accompaniment-p", type=float, default=0.9, help="share of clips with an accompaniment")
    ap.add_argument("--minutes", type=float, nargs="+", default=[8.0], help="training time per head (one or one per head)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--high", action="store_true", help="give the rescorers the fine high band (rescore.py)")
    ap.add_argument("--high-rate", type=int, default=F.SR, choices=R.HIGH_RATES,
                    help="synthesize the clips at this rate and let the high band hear up to half of it")
    ap.add_argument("--keep", nargs="*", default=None, metavar="HEAD",
                    help="rescorers of the base model to keep (default: all but those trained here)")
    a = ap.parse_args(argv)
    import torch

    from breakgan.errors import BreakganError
    from breakgan.transcribe.model import HEADS, load_model, save_model

    try:
        model, meta = load_model(a.model)
    except BreakganError as e:
        ap.error(f"--model: {e}")
    for option, names in (("--heads", a.heads), ("--keep", a.keep or [])):
        if bad := [h for h in names if h not in HEADS]:
            ap.error(f"{option} {' '.join(bad)}: not a head ({', '.join(HEADS)})")
    if len(a.minutes) not in (1, len(a.heads)) or not all(0 < m <= 24 * 60 for m in a.minutes):
        ap.error("--minutes: one value, or one per head, each above 0 (at most a day)")
    if not 1 <= a.clips <= 100_000 or not 1 <= a.threads <= 64:
        ap.error("--clips: 1..100000 per set; --threads: 1..64")
    if not 0 <= a.accompaniment_p <= 1:
        ap.error("--accompaniment-p: a share, 0..1")
    if a.high_rate != F.SR and not a.high:
        ap.error("--high-rate: only with --high")
    if not (Path(a.groove) / "info.csv").is_file():
        ap.error(f"--groove {a.groove}: no info.csv there (the Groove MIDI Dataset folder)")
    torch.set_num_threads(a.threads)
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    from concurrent.futures import ProcessPoolExecutor

    import multiprocessing

    # synthesis is single-threaded: one set per process; spawned, as a child forked after torch's thread
    # pool started can hang
    with ProcessPoolExecutor(a.threads, mp_context=multiprocessing.get_context("spawn")) as pool:
        sets = list(pool.map(functools.partial(synthesized, a.groove, work, accompaniment_p=a.accompaniment_p,
                                               rate=a.high_rate),
                             a.seeds, [a.clips] * len(a.seeds)))
    minutes = a.minutes * len(a.heads) if len(a.minutes) == 1 else a.minutes
    meta = {**meta, "rescore": dict(meta.get("rescore", {}))}
    if a.keep is not None:  # the others are dropped, so a head can be compared with and without its rescorer
        for head in [h for h in meta["rescore"] if h not in a.keep and h not in a.heads]:
            del meta["rescore"][head], model.rescorers[head]
    for head, mins in zip(a.heads, minutes):
        parts = [candidate_set(model, meta, A, labels, head, a.high, a.high_rate) for _, A, labels in sets]
        data = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        del parts  # the patches are gigabytes: one copy at a time
        print(f"{head}: {len(data['y'])} candidates, {data['y'].mean():.1%} of them hits", flush=True)
        net, record = fit(data, HEADS.index(head), minutes=mins, log=lambda s: print(f"{head}: {s}", flush=True))
        model.rescorers[head] = net
        meta["rescore"][head] = {"hidden": net.mlp[-1].in_features, "high": a.high,
                                 **({"high_rate": a.high_rate} if a.high_rate != F.SR else {}),
                                 "candidate_threshold": R.CANDIDATE_THRESHOLD,
                                 "threshold": 0.5, "training": {**record, "seeds": a.seeds, "clips": a.clips * len(a.seeds),
                                                   "accompaniment_p": a.accompaniment_p}}
        del data
    save_model(model, a.out, meta)
    print("saved", a.out, "(thresholds 0.5 until benchmarks/transcribe_dev.py --write chooses them)", flush=True)


if __name__ == "__main__":
    main()
