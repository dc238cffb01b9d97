"""Drum transcription on TRAIN-split grooves rendered with a kit that training never used: the development
set on which transcription models are compared and their per-head thresholds chosen, so the validation
split (`benchmarks/transcribe.py`) is measured only once per shipped model.

The files: GMD train-split 4/4 beats of at least 30 s, `--files` of them drawn with a fixed seed, first
30 s, drums rendered with AVL's "Red Zeppelin" (held out from training, and not the benchmark's "Black
Pearl"), once alone and once with a bass + chords accompaniment from FluidR3 at the drums' RMS (rendered by
`benchmarks/transcribe.py`'s `render_set`). The network's activations are computed once per file; then,
per head, every threshold on a 0.05 grid is scored (F, +-50 ms, both conditions pooled) and the tempo is
taken as `drums transcribe` takes it. With `--tune-clips N` the thresholds are chosen on the pool of both
conditions and N clips synthesized from the train split with the training kits (as `train.py` tunes them,
same seed), so a threshold that suits the unseen kit must not cost the kits the model knows.

    python benchmarks/transcribe_dev.py --model FILE [--model FILE2 ...]
    python benchmarks/transcribe_dev.py --model FILE --write OUT.safetensors   # FILE with the thresholds found
    python benchmarks/transcribe_dev.py --model A --model B --ensemble [--write OUT.safetensors]  # A and B averaged

A head with a rescorer (rescore.py) is scored on its rescorer's probability: the threshold chosen for it is
the rescorer's, written into the model's "rescore" metadata.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

DEV_KIT = "/usr/share/sounds/sf2/Red_Zeppelin_4_LV2.sf2"
DEV_ACCOMP = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
GRID = np.round(np.arange(0.3, 0.99, 0.05), 2)
CONDS = ("with_accompaniment", "drums_only")


def dev_set(groove: str, n: int, folder: Path):
    from transcribe import render_set

    from breakgan.transcribe.synthesis import groove_files

    files = [g for g in groove_files(groove, "train") if g.beat_type == "beat" and g.duration >= 30]
    pick = np.random.default_rng(23).choice(len(files), n, replace=False)
    return render_set([files[i] for i in pick], 30.0, DEV_KIT, 0, DEV_ACCOMP, folder, seed=5)


def file_candidates(model, meta: dict, wav: Path):
    """A whole file decoded as `drums transcribe` decodes it -> ((frames, heads) onset probabilities,
    rescore.head_candidates: per head (times, peaks, scores))."""
    from breakgan.media.audio import audio_blocks
    from breakgan.transcribe import features as F
    from breakgan.transcribe.infer import whole_signal
    from breakgan.transcribe.rescore import audio_rate, head_candidates

    audio = np.concatenate(list(audio_blocks(wav, F.SR, 5 * F.SR)))
    rate = audio_rate(meta)
    high = np.concatenate(list(audio_blocks(wav, rate, 5 * rate))) if rate > F.SR else None
    x, a, _ = whole_signal(model, meta, audio)
    return a, head_candidates(model, meta, audio, x, a, float(GRID.min()), high)


def head_times(cands, h: int, threshold: float, kick_threshold: float) -> np.ndarray:
    """Onset times of head h at `threshold` from head_candidates' output, toms without kick doubles (as
    infer does)."""
    from breakgan.transcribe.model import HEADS
    from breakgan.transcribe.peaks import not_kick_doubles

    times, peaks, scores = cands[h]
    keep = scores > threshold
    times, peaks = times[keep], peaks[keep]
    if HEADS[h] == "toms":
        kt, kp, ks = cands[HEADS.index("kick")]
        times = times[not_kick_doubles(times, peaks, kt[ks > kick_threshold], kp[ks > kick_threshold])]
    return times


def tuning_counts(model_path, groove: str, n: int) -> dict:
    """(head, threshold) -> [tp, fp, fn] on n training-kit clips (train.py's tuning clips for this model)."""
    from breakgan.transcribe.infer import whole_signal
    from breakgan.transcribe.model import HEADS, load_model
    from breakgan.transcribe.peaks import match
    from breakgan.transcribe import features as F
    from breakgan.transcribe.rescore import audio_rate, head_candidates
    from breakgan.transcribe.train import synthesize_set

    model, meta = load_model(model_path)
    rate = audio_rate(meta)  # synthesized at the rate the rescorers hear; the networks get it at 16 kHz
    _, _, _, labels, A = synthesize_set(groove, n, 8.0, int(meta["training"]["seed"]) + 1000, keep_audio=True,
                                        rate=rate)
    counts = {}
    cands = []
    for clip in A:
        clip = clip.astype(np.float32)
        y = F.to_model_rate(clip, rate)
        x, a, _ = whole_signal(model, meta, y)
        cands.append(head_candidates(model, meta, y, x, a, float(GRID.min()), clip if rate > F.SR else None))
    for h, name in enumerate(HEADS):
        for t in GRID:
            c = np.zeros(3, int)
            for cd, lab in zip(cands, labels):
                c += np.array(match([x for x, hh, _ in lab if hh == h],
                                    head_times(cd, h, float(t), meta["thresholds"][0]))[:3])
            counts[name, t] = c
    return counts


def evaluate(model_path, rendered, tuning: dict | None = None) -> dict:
    from breakgan.transcribe.infer import TEMPO_WEIGHTS
    from breakgan.transcribe.model import HEADS, load_model
    from breakgan.transcribe.peaks import match, prf
    from breakgan.transcribe.tempo import beat_grid

    model, meta = load_model(model_path)  # once: each file's activations reuse it
    both = {c: [file_candidates(model, meta, r["paths"][c]) for r in rendered] for c in CONDS}
    acts = {c: [a for a, _ in both[c]] for c in CONDS}
    cands = {c: [cd for _, cd in both[c]] for c in CONDS}
    own = meta["thresholds"]
    out = {"thresholds_own": own, "thresholds_dev": [], "heads": {}}
    for h, name in enumerate(HEADS):
        counts = {(c, t): np.zeros(3, int) for c in CONDS for t in GRID}
        for c in CONDS:
            for t in GRID:
                for cd, r in zip(cands[c], rendered):
                    kick_t = out["thresholds_dev"][0] if h else float(t)
                    counts[c, t] += np.array(match(r["ref"][name], head_times(cd, h, float(t), kick_t))[:3])
        pooled = [prf(*(counts[CONDS[0], t] + counts[CONDS[1], t]
                        + (tuning[name, t] if tuning else 0)))[2] for t in GRID]
        best = float(GRID[int(np.argmax(pooled))])
        out["thresholds_dev"].append(best)
        out["heads"][name] = {c: round(prf(*counts[c, best])[2], 3) for c in CONDS}
    for c in CONDS:  # the tempo with the dev thresholds, as drums transcribe would find it
        right = 0
        for a, cd, r in zip(acts[c], cands[c], rendered):
            th = out["thresholds_dev"]
            onsets = {name: np.stack([head_times(cd, h, th[h], th[0])] * 2, 1) for h, name in enumerate(HEADS)}
            tempo = beat_grid((a @ TEMPO_WEIGHTS).astype(np.float32), onsets)[0]
            right += tempo is not None and abs(tempo - r["bpm"]) <= 0.04 * r["bpm"]
        out[f"tempo_{c}"] = f"{right}/{len(rendered)}"
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--groove", default="/work/shared/data/groove")
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--files", type=int, default=48)
    ap.add_argument("--tune-clips", type=int, default=0, help="pool N training-kit clips into the choice")
    ap.add_argument("--write", default=None, help="save the (one) model with the thresholds found here")
    ap.add_argument("--ensemble", action="store_true", help="evaluate (and --write) the --model files averaged")
    ap.add_argument("--phases", type=int, choices=(1, 2), default=None,
                    help="evaluate (and --write) the model(s) with this many frame phases (infer.py)")
    ap.add_argument("--join-rescorers", default=None, metavar="HEAD",
                    help="evaluate (and --write) the first --model with HEAD's rescorers of all --model files "
                         "averaged (they must share one network)")
    ap.add_argument("--without", nargs="+", default=[], metavar="HEAD",
                    help="evaluate (and --write) the model(s) with these heads' rescorers removed")
    a = ap.parse_args(argv)
    from breakgan.transcribe.model import HEADS

    if bad := [h for h in a.without if h not in HEADS]:
        sys.exit(f"--without {' '.join(bad)}: not a head ({', '.join(HEADS)})")
    if a.ensemble and len(a.model) < 2:
        sys.exit("--ensemble: give two or more --model files")
    if a.ensemble and a.join_rescorers:
        sys.exit("--ensemble and --join-rescorers: one at a time")
    if a.join_rescorers and (a.join_rescorers not in HEADS or len(a.model) < 2):
        sys.exit(f"--join-rescorers {a.join_rescorers}: a head ({', '.join(HEADS)}) and two or more --model files")
    if a.write and len(a.model) != 1 and not (a.ensemble or a.join_rescorers):
        sys.exit("--write: give exactly one --model (or --ensemble, --join-rescorers)")
    if not 1 <= a.files <= 200 or a.tune_clips < 0:
        sys.exit("--files: 1..200; --tune-clips: 0 or more")
    if not (Path(a.groove) / "info.csv").is_file():
        sys.exit(f"--groove {a.groove}: no info.csv there (the Groove MIDI Dataset folder)")
    for font in (DEV_KIT, DEV_ACCOMP):
        if not Path(font).is_file():
            sys.exit(f"{font}: not installed (apt-get install avldrums.lv2-soundfont fluid-soundfont-gm)")
    import torch

    from breakgan.errors import BreakganError
    from breakgan.transcribe.model import load_model

    for m in a.model:  # a wrong --model is one line, before anything is rendered
        try:
            load_model(m)
        except BreakganError as e:
            sys.exit(str(e))
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        if a.ensemble:  # evaluated like any one model file
            from breakgan.transcribe.model import average, save_model

            net, meta = average([load_model(m) for m in a.model])
            a.model = [str(save_model(net, Path(tmp) / "ensemble.safetensors", meta))]
        if a.join_rescorers:
            from breakgan.transcribe.model import join_rescorers, save_model

            try:
                net, meta = join_rescorers([load_model(m) for m in a.model], a.join_rescorers)
            except BreakganError as e:
                sys.exit(str(e))
            a.model = [str(save_model(net, Path(tmp) / "joined.safetensors", meta))]
        if a.without:  # the network's own peaks decide these heads again
            from breakgan.transcribe.model import save_model

            stripped = []
            for k, m in enumerate(a.model):
                net, meta = load_model(m)
                rescore = {h: s for h, s in meta.get("rescore", {}).items() if h not in a.without}
                for h in a.without:
                    if h in net.rescorers:
                        del net.rescorers[h]
                stripped.append(str(save_model(net, Path(tmp) / f"without_{k}.safetensors", {**meta, "rescore": rescore})))
            a.model = stripped
        if a.phases:
            from breakgan.transcribe.model import save_model

            phased = []
            for k, m in enumerate(a.model):
                net, meta = load_model(m)
                phased.append(str(save_model(net, Path(tmp) / f"phases_{k}.safetensors", {**meta, "phases": a.phases})))
            a.model = phased
        rendered = dev_set(a.groove, a.files, Path(tmp))
        for m in a.model:
            res = evaluate(m, rendered, tuning_counts(m, a.groove, a.tune_clips) if a.tune_clips else None)
            total = {c: round(sum(v[c] for v in res["heads"].values()), 3) for c in CONDS}
            print(m, json.dumps(res), "sum of F:", json.dumps(total), flush=True)
        if a.write:
            write(a, res)


def write(a, res) -> None:
    """Save the one evaluated model with the thresholds chosen on the development set."""
    from breakgan.transcribe.model import load_model, save_model

    from breakgan.transcribe.model import HEADS

    model, meta = load_model(a.model[0])
    thresholds = list(res["thresholds_dev"])
    rescore = {name: dict(spec) for name, spec in meta.get("rescore", {}).items()}
    for name, spec in rescore.items():  # a rescored head's threshold is on its rescorer's probability
        spec["threshold"] = thresholds[HEADS.index(name)]
        thresholds[HEADS.index(name)] = meta["thresholds"][HEADS.index(name)]
    meta = {**meta, "thresholds": thresholds, **({"rescore": rescore} if rescore else {}), "thresholds_from": (
        f"benchmarks/transcribe_dev.py: {a.files} train-split grooves, kit {Path(DEV_KIT).name}, "
        f"accompaniment {Path(DEV_ACCOMP).name}, F pooled over drums only and with accompaniment"
        + (f" and {a.tune_clips} training-kit clips" if a.tune_clips else "")),
        "dev_f": res["heads"]}
    save_model(model, a.write, meta)
    print("wrote", a.write)


if __name__ == "__main__":
    main()
