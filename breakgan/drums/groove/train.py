"""Training the humanize model on the Groove MIDI Dataset's train split (a few CPU minutes).

    python -m breakgan.drums.groove.train [--data /work/shared/data/groove] [--minutes 4] [--out FILE]
    python -m breakgan.drums.groove.train --holdout ...   # compare settings on 1/8 of train
    python -m breakgan.drums.groove.train --minutes 6 --members 16 --jobs 2 --profile-bars 0.1 --out G16
    python -m breakgan.drums.groove.train --minutes 6 --members 16 --jobs 2 --seed 16 --profile-bars 0.1 \
        --drop-hits 0.25 --add-to G16 --out G32
    python -m breakgan.drums.groove.train --steps 2700 --members 8 --jobs 2 --seed 32 --profile-bars 0.1 \
        --hidden 96 --add-to G32 --out G40
    python -m breakgan.drums.groove.train --steps 2700 --members 8 --jobs 2 --seed 40 --profile-bars 0.1 \
        --layers 3 --add-to G40 --out G48
    python -m breakgan.drums.groove.train --steps 2700 --members 4 --jobs 2 --seed 48 --profile-bars 0.1 \
        --layers 4 --add-to G48 --out OUT   # as shipped: 32 members of 64 units, 8 of 96, 8 of 3 layers, 4 of 4

Every window of bars (hop 1 bar) of every 4/4 train performance; L1 loss on velocity (/127) and timing
offset at the hits only, since both are reported as mean absolute errors. The offset error is weighted by
the performance's 16th-step length, so the loss is in milliseconds, as the figures are. One thread, seeded.
`--holdout` trains on 7/8 of the train files and reports figures on the other 1/8 (chosen by a hash of the
file name), so settings are compared without looking at the validation split. `--members K` trains K
models from seeds seed..seed+K-1 (`--jobs` at a time, one thread each) and ships their mean; `--add-to
FILE --seed K` adds members to a model of the same window length (another width joins as its own group;
see `GrooveEnsemble`). `--steps N` replaces the wall-clock budget with N steps, so a run gives the same
weights on any machine.
"""

from __future__ import annotations

import argparse
import inspect
import tempfile
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from breakgan.drums.groove.data import load_split
from breakgan.drums.groove.model import (MAX_HIDDEN, MAX_LAYERS, MAX_MEMBERS, MAX_WINDOW_BARS, SHIPPED, STEPS_PER_BAR,
                                         GrooveEnsemble, GrooveNet, bar_hits, load, pattern_profile, save, windows)
from breakgan.errors import BreakganError
from breakgan.stage import atomic_file


def training_windows(perfs, window_bars: int) -> tuple[np.ndarray, ...]:
    """-> hits, velocity (0..1), offset (steps), tempo, profile, 16th-step length (ms) and performance index
    per window."""
    cols: list[list[np.ndarray]] = [[] for _ in range(7)]
    for i, p in enumerate(perfs):
        h, _ = windows(p.velocity > 0, window_bars)
        v, _ = windows(p.velocity.astype(np.float32) / 127.0, window_bars)
        o, _ = windows(p.offset, window_bars)
        n = len(h)
        for col, a in zip(cols, (h, v, o, np.full(n, p.tempo, np.float32),
                                 np.repeat(pattern_profile(p.velocity > 0)[None], n, 0),
                                 np.full(n, p.step_ms, np.float32), np.full(n, i, np.int64))):
            col.append(a)
    return tuple(np.concatenate(c) for c in cols)


def subsampled_profiles(takes_bars: list[np.ndarray], perf: np.ndarray, least: float,
                        rng: np.random.Generator) -> torch.Tensor:
    """Each window's profile from a random share (least..1) of its performance's bars.

    The exact profile names the training take, so a network can learn each take's timing by heart; the
    profile of a random part of the take still says what the groove is (and patterns to humanize are
    often shorter than a take)."""
    out = np.empty((len(perf), takes_bars[0].shape[1]), np.float32)
    for j, i in enumerate(perf):
        b = takes_bars[i]
        k = max(1, int(round(len(b) * rng.uniform(least, 1.0))))
        out[j] = b[rng.choice(len(b), k, replace=False)].mean(0)
    return torch.from_numpy(out)


def holdout_split(perfs) -> tuple[list, list]:
    """(7/8, 1/8) of the performances, by a hash of the file name (stable across runs and machines)."""
    held = [zlib.crc32(p.name.encode()) % 8 == 0 for p in perfs]
    return [p for p, h in zip(perfs, held) if not h], [p for p, h in zip(perfs, held) if h]


def train_perfs(data: str, holdout: bool) -> tuple[list, list]:
    perfs = load_split(data, "train", min_bars=1)
    return holdout_split(perfs) if holdout else (perfs, [])


def train_member(data: str, minutes: float, seed: int = 0, hidden: int = 64, layers: int = 2,
                 window_bars: int = 4, batch: int = 64, offset_weight: float = 2.0, profile: bool = True,
                 ms_loss: bool = True, profile_bars: float = 0.0, drop_hits: float = 0.0, holdout: bool = False,
                 steps: int = 0, tempo_jitter: float = 0.0, log=print) -> tuple[GrooveNet, dict]:
    """One model, trained on one thread for `steps` Adam steps, or (steps 0) for `minutes` of wall clock.

    A step budget gives the same weights on any machine; a time budget gives fewer steps on a slower one."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    tempo_rng = np.random.default_rng([seed, 0x7E4])  # its own stream: the other draws stay as without it
    perfs, held = train_perfs(data, holdout)
    hits, vel, off, tempo, prof, step_ms, perf_of = (torch.from_numpy(a) for a in training_windows(perfs, window_bars))
    takes_bars = [bar_hits(p.velocity > 0) for p in perfs]
    ms_scale = step_ms / step_ms.mean() if ms_loss else torch.ones_like(step_ms)
    log(f"{len(perfs)} train performances, {len(hits)} windows" + (f", {len(held)} held out" if held else ""))
    net = GrooveNet(hidden, layers, window_bars, profile=profile)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    t0, step, ema = time.perf_counter(), 0, None
    budget = minutes * 60

    def done() -> float:  # share of the budget used
        return step / steps if steps else (time.perf_counter() - t0) / budget

    while done() < 1.0:
        idx = torch.from_numpy(rng.integers(0, len(hits), batch))
        h, v, o = hits[idx], vel[idx], off[idx]
        if drop_hits:  # a window's exact hits name its take as well as the profile does
            h = h * (torch.rand(h.shape, generator=gen) >= drop_hits)
        pr = prof[idx] if not profile_bars else subsampled_profiles(takes_bars, perf_of[idx].numpy(), profile_bars, rng)
        t = tempo[idx]
        if tempo_jitter:  # a take's exact tempo names it too; the loss keeps the true step length
            t = t * torch.from_numpy(tempo_rng.uniform(1 - tempo_jitter, 1 + tempo_jitter, batch).astype(np.float32))
        pv, po = net(h, t, pr)
        mask = h > 0
        off_err = (po - o).abs() * ms_scale[idx][:, None, None]
        loss = (pv - v).abs()[mask].mean() + offset_weight * off_err[mask].mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        step += 1
        for g in opt.param_groups:  # cosine decay over the budget
            g["lr"] = 3e-3 * 0.5 * (1 + np.cos(np.pi * min(1.0, done())))
        if step % 500 == 0:
            log(f"step {step}: loss {ema:.4f} ({time.perf_counter() - t0:.0f} s)")
    net.eval()
    meta = {"train_steps": step, "train_seconds": round(time.perf_counter() - t0, 1), "batch": batch,
            "train_windows": int(len(hits)), "train_files": len(perfs), "threads": 1, "seed": seed,
            "offset_weight": offset_weight, "ms_loss": ms_loss, "profile_bars": profile_bars,
            "drop_hits": drop_hits, "steps": steps, "tempo_jitter": tempo_jitter,
            "data": "Groove MIDI Dataset v1.0.0, train split (CC BY 4.0)", "steps_per_bar": STEPS_PER_BAR}
    return net, meta


MEMBER_SETTINGS = ("batch", "offset_weight", "ms_loss", "profile_bars", "drop_hits", "steps", "tempo_jitter")


def _member_job(path: str, kwargs: dict) -> dict:
    net, meta = train_member(**kwargs, log=lambda msg: print(f"[seed {kwargs['seed']}] {msg}", flush=True))
    save(net, Path(path), meta)  # weights come back as a safetensors file; only options and this record
    return meta  # (plain dicts of numbers and strings) cross between the processes


def join(base: GrooveEnsemble, base_meta: dict, nets: list[GrooveNet], meta: dict) -> tuple[GrooveEnsemble, dict]:
    """base's members, then `nets` (with their record `meta`), as one ensemble. A setting all members share
    stays one value; one that differs becomes one entry per member, so the file says how each was trained."""
    defaults = inspect.signature(train_member).parameters
    meta = {**meta, **{key: [*base_meta[key], *meta[key]] for key in ("seeds", "train_steps", "train_seconds")}}
    for key in MEMBER_SETTINGS:
        per_member = []
        for record, n in ((base_meta, len(base.members)), (meta, len(nets))):
            value = record.get(key, defaults[key].default)  # files from before a setting existed
            per_member += value if isinstance(value, list) else [value] * n
        meta[key] = per_member[0] if len(set(per_member)) == 1 else per_member
    return GrooveEnsemble([*base.members, *nets]).eval(), meta


def train(data: str, minutes: float, seed: int = 0, members: int = 1, jobs: int = 1, holdout: bool = False,
          add_to: tuple[GrooveEnsemble, dict] | None = None, log=print, **options) -> tuple[GrooveEnsemble, dict]:
    """`members` models from seeds seed, seed+1, ..., each trained for `minutes` (or `steps`), as one ensemble;
    with `add_to` (a loaded model and its metadata, of the same window length), its members come first."""
    kwargs = [dict(data=data, minutes=minutes, seed=seed + i, holdout=holdout, **options) for i in range(members)]
    if add_to is not None:  # checked before minutes of training, not after
        base, base_meta = add_to
        if set(base_meta.get("seeds", [])) & {k["seed"] for k in kwargs}:
            raise ValueError(f"seeds from {seed} overlap the model's {base_meta['seeds']}")
        if len(base.members) + members > MAX_MEMBERS:
            raise ValueError(f"the model has {len(base.members)} members; a file holds at most {MAX_MEMBERS}")
        defaults = inspect.signature(train_member).parameters
        arch = {k: options.get(k, defaults[k].default) for k in ("hidden", "layers", "window_bars", "profile")}
        GrooveEnsemble([*base.members, GrooveNet(**arch)])  # raises unless window length and inputs match
    with tempfile.TemporaryDirectory() as tmp:
        paths = [str(Path(tmp) / f"member-{i}.safetensors") for i in range(members)]
        if jobs > 1 and members > 1:
            with ProcessPoolExecutor(min(jobs, members)) as pool:
                metas = list(pool.map(_member_job, paths, kwargs))
        else:
            metas = [_member_job(p, k) for p, k in zip(paths, kwargs)]
        nets = [load(Path(p))[0].members[0] for p in paths]
    first = metas[0]
    meta = {**{k: v for k, v in first.items() if k not in ("train_steps", "train_seconds", "seed")},
            "seeds": [m["seed"] for m in metas], "train_steps": [m["train_steps"] for m in metas],
            "train_seconds": [m["train_seconds"] for m in metas], "jobs": jobs}
    net, meta = join(*add_to, nets, meta) if add_to is not None else (GrooveEnsemble(nets).eval(), meta)
    if holdout:
        from breakgan.drums.groove.evaluate import errors

        perfs, held = train_perfs(data, True)
        figures = {"ensemble": errors(net, perfs, held)}
        if members > 1:
            figures.update({f"member {i}": errors(m, perfs, held) for i, m in enumerate(nets)})
        meta["holdout"] = {"files": len(held), **figures}
        for name, f in figures.items():
            log(f"held-out train files, {name}: velocity {100 * f['gain']['vel']:.1f}% and timing "
                f"{100 * f['gain']['ms']:.1f}% below the part x position mean")
    return net, meta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="/work/shared/data/groove")
    ap.add_argument("--minutes", type=float, default=4.0, help="wall clock per member (ignored with --steps)")
    ap.add_argument("--steps", type=int, default=0,
                    help="Adam steps per member instead of --minutes: the same weights on any machine")
    ap.add_argument("--out", type=Path, default=SHIPPED)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hidden", type=int, default=64, help="GRU units per direction")
    ap.add_argument("--layers", type=int, default=2, help="GRU layers")
    ap.add_argument("--window-bars", type=int, default=4)
    ap.add_argument("--offset-weight", type=float, default=2.0)
    ap.add_argument("--no-profile", action="store_true", help="no whole-pattern profile input (the v1 model)")
    ap.add_argument("--profile-bars", type=float, default=0.0,
                    help="train on profiles of a random share (this..1) of each take's bars; 0: whole takes")
    ap.add_argument("--drop-hits", type=float, default=0.0,
                    help="drop this share of each training window's hits from its input (and its loss)")
    ap.add_argument("--tempo-jitter", type=float, default=0.0,
                    help="scale each training window's tempo input by a random factor within 1 +- this")
    ap.add_argument("--step-loss", action="store_true", help="offset loss in steps rather than milliseconds")
    ap.add_argument("--holdout", action="store_true", help="train on 7/8 of train, report on the other 1/8")
    ap.add_argument("--members", type=int, default=1, help="models in the ensemble (each trained --minutes)")
    ap.add_argument("--jobs", type=int, default=1, help="members trained at once (one process and thread each)")
    ap.add_argument("--add-to", type=Path, default=None,
                    help="a model of the same architecture: the new members join its members (members trained "
                         "with other settings keep theirs in the file's record)")
    args = ap.parse_args()
    for option, value, ok in (("--minutes", args.minutes, np.isfinite(args.minutes) and args.minutes > 0),
                              ("--steps", args.steps, args.steps >= 0),
                              ("--members", args.members, 1 <= args.members <= MAX_MEMBERS),
                              ("--jobs", args.jobs, args.jobs >= 1),
                              ("--hidden", args.hidden, 1 <= args.hidden <= MAX_HIDDEN),
                              ("--layers", args.layers, 1 <= args.layers <= MAX_LAYERS),
                              ("--window-bars", args.window_bars, 1 <= args.window_bars <= MAX_WINDOW_BARS),
                              ("--profile-bars", args.profile_bars, 0.0 <= args.profile_bars <= 1.0),
                              ("--drop-hits", args.drop_hits, 0.0 <= args.drop_hits < 1.0),
                              ("--tempo-jitter", args.tempo_jitter, 0.0 <= args.tempo_jitter < 0.5)):
        if not ok:
            ap.error(f"{option} {value}: must be " + {"--minutes": "a positive number of minutes",
                                                      "--steps": "a number of steps (0: use --minutes)",
                                                      "--members": f"1..{MAX_MEMBERS} (what a model file holds)",
                                                      "--jobs": "at least 1",
                                                      "--hidden": f"1..{MAX_HIDDEN} units",
                                                      "--layers": f"1..{MAX_LAYERS} layers",
                                                      "--window-bars": f"1..{MAX_WINDOW_BARS} bars",
                                                      "--profile-bars": "a share of bars in 0..1 (0: whole takes)",
                                                      "--drop-hits": "a share of hits in 0..1 (below 1)",
                                                      "--tempo-jitter": "a share in 0..0.5 (below 0.5)"}[option])
    if args.out.is_symlink() or (args.out.exists() and not args.out.is_file()):
        ap.error(f"--out {args.out}: is not a plain file; give a new file name")
    if args.out.exists():
        try:  # replace only a groove model (an earlier run's, or the shipped one), never another file
            load(args.out)
        except BreakganError:
            ap.error(f"--out {args.out}: exists and is not a groove model; give a new file name")
    try:
        net, meta = train(args.data, args.minutes, args.seed, members=args.members, jobs=args.jobs,
                          holdout=args.holdout, add_to=load(args.add_to) if args.add_to else None,
                          hidden=args.hidden, layers=args.layers, window_bars=args.window_bars, offset_weight=args.offset_weight,
                          profile=not args.no_profile, ms_loss=not args.step_loss, profile_bars=args.profile_bars,
                          drop_hits=args.drop_hits, steps=args.steps,
                          tempo_jitter=args.tempo_jitter)
    except (BreakganError, ValueError) as e:
        raise SystemExit(f"--add-to {args.add_to}: {e}" if args.add_to and isinstance(e, ValueError) else str(e))
    except OSError as e:
        raise SystemExit(f"--data {args.data}: {e.strerror} ({e.filename})")
    with atomic_file(args.out) as tmp:  # a killed run leaves the previous model whole
        save(net, tmp, meta)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
