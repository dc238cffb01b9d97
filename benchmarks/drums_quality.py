"""Does DrumsRNN keep the groove? Issue 13's table on the Groove MIDI Dataset.

    python benchmarks/drums_quality.py [--split validation|train] [--quick] [--primers N] [--candidates K]
                                       [--settings default,plain,...] [--data /work/shared/data/groove]

Primers are the first 2 bars (16th grid) of the split's 4/4 files of at least 10 bars; the real
continuation is their next 8 bars; each setting generates 8 bars after each primer, K candidates each
(candidate noise from (random seed, primer, candidate), so primers never share noise). A trigram
(backed off to bigram and unigram) trained on the train split is the baseline. Tune on --split train,
report on --split validation; the test split is never read.

Metrics, per generated bar: snare hits, hats+ride hits (closed, open, ride), tom hits; % bars with 12 or
more snare hits; % bars with no hats and no ride, over all bars and over the bars after primers with
hats or ride in at least one bar (a timekeeper lost, not one the drummer never played: primers that keep
time on toms continue without hats in the real data too); groove correlation = Pearson of the bar's
48-value onset profile (16 positions x kick, snare, hats+ride) against the primer's (mean of its 2 bars),
as the 8-bar mean and at generated bars 1 and 8 (a bar with a constant profile counts as 0).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from breakgan.drums.encoding import hits_from_labels, labels_from_pattern
from breakgan.drums.generate import PLAIN, BeamOptions, Decoding, candidate_noise_seed
from breakgan.drums.groove.data import SPLITS, STEPS_PER_BAR, load_split
from breakgan.drums.run import generate_pattern, runtime_model
from breakgan.drums.seed import Seed

PRIMER_BARS, GEN_BARS = 2, 8
DATA = "/work/shared/data/groove"
SNARE, TOMS, KICK = 1, (4, 5, 6), 0
TIMEKEEPERS = (2, 3, 8)

SETTINGS = {  # name -> (temperature, beam size, decoding)
    "default": (1.0, 1, Decoding()),
    "plain": (1.0, 1, PLAIN),  # the old default: T 1.0, the model's distribution as it is
    "T0.8": (0.8, 1, PLAIN),
    "beam4": (1.0, 4, PLAIN),
}


def groove_profile(hits: np.ndarray) -> np.ndarray:
    """(bars * 16, 9) bool -> (bars, 48) onset profile: kick, snare, hats+ride at each 16th."""
    bars = hits.reshape(-1, STEPS_PER_BAR, hits.shape[1])
    return np.concatenate([bars[:, :, KICK], bars[:, :, SNARE], bars[:, :, TIMEKEEPERS].any(2)], 1).astype(float)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    d = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / d) if d > 0 else 0.0


def primer_time_bars(primer: np.ndarray) -> float:
    """Share of the primer's bars with a hat or ride hit."""
    return float(primer.reshape(-1, STEPS_PER_BAR, primer.shape[1])[:, :, TIMEKEEPERS].any((1, 2)).mean())


def bar_metrics(primer: np.ndarray, cont: np.ndarray) -> dict[str, np.ndarray]:
    """primer (32, 9), continuation (128, 9) hits -> per-bar values (8,) of each metric."""
    bars = cont.reshape(GEN_BARS, STEPS_PER_BAR, -1)
    ref = groove_profile(primer).mean(0)
    return {"snare": bars[:, :, SNARE].sum(1), "hats_ride": bars[:, :, TIMEKEEPERS].sum((1, 2)),
            "toms": bars[:, :, TOMS].sum((1, 2)), "roll": bars[:, :, SNARE].sum(1) >= 12,
            "no_time": ~bars[:, :, TIMEKEEPERS].any((1, 2)),
            # bars after primers that keep time in every bar: where a missing timekeeper is a lost one
            "keeps": np.full(GEN_BARS, primer_time_bars(primer) == 1),
            "some": np.full(GEN_BARS, 0 < primer_time_bars(primer) < 1),  # hats/ride in some bars only
            "none": np.full(GEN_BARS, primer_time_bars(primer) == 0),
            "timed": np.full(GEN_BARS, primer_time_bars(primer) > 0),  # every or some
            "corr": np.array([pearson(p, ref) for p in groove_profile(cont)])}


class Trigram:
    def __init__(self, seqs: list[np.ndarray]):
        from collections import Counter, defaultdict

        self.tri, self.bi = defaultdict(Counter), defaultdict(Counter)
        self.uni = Counter()
        for s in seqs:
            s = [int(x) for x in s]
            self.uni.update(s)
            for a, b in zip(s, s[1:]):
                self.bi[a][b] += 1
            for a, b, c in zip(s, s[1:], s[2:]):
                self.tri[(a, b)][c] += 1

    def generate(self, primer: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        s = [int(x) for x in primer]
        for _ in range(n):
            dist = self.tri.get((s[-2], s[-1])) or self.bi.get(s[-1]) or self.uni
            keys, counts = zip(*dist.items())
            c = np.array(counts, float)
            s.append(keys[int(rng.choice(len(keys), p=c / c.sum()))])
        return np.array(s)


def summarize(rows: list[dict]) -> dict[str, float]:
    cat = {k: np.stack([r[k] for r in rows]) for k in rows[0]}  # (n, 8)
    return {"snare": cat["snare"].mean(), "hats_ride": cat["hats_ride"].mean(), "toms": cat["toms"].mean(),
            "roll%": 100 * cat["roll"].mean(), "no_time%": 100 * cat["no_time"].mean(),
            **{f"{k}_time%": 100 * (cat["no_time"] & cat[k]).sum() / max(1, cat[k].sum())
               for k in ("keeps", "some", "none", "timed")},
            **{f"{k}_bars": float(cat[k].sum()) for k in ("keeps", "some", "none")},
            "corr": cat["corr"].mean(), "corr1": cat["corr"][:, 0].mean(), "corr8": cat["corr"][:, -1].mean()}


def pick_primers(perfs, n: int):
    if n >= len(perfs):
        return perfs
    return [perfs[i] for i in np.linspace(0, len(perfs) - 1, n).round().astype(int)]


def evaluate(settings: dict, *, split: str, primers: int, candidates: int, data: str = DATA,
             random_seed: int = 0, with_baselines: bool = True, log=print) -> dict[str, dict[str, float]]:
    need = (PRIMER_BARS + GEN_BARS) * STEPS_PER_BAR
    perfs = pick_primers(load_split(data, split, min_bars=PRIMER_BARS + GEN_BARS), primers)
    runtime, _ = runtime_model(None)
    results: dict[str, list] = {name: [] for name in settings}
    for name, (temp, beam_size, decoding) in settings.items():
        t0 = time.perf_counter()
        for perf in perfs:
            primer = perf.velocity[:PRIMER_BARS * STEPS_PER_BAR]
            seed = Seed(primer.copy(), perf.tempo, 4, perf.name)
            for k in range(1, candidates + 1):
                pattern, _ = generate_pattern(runtime, seed, bars=PRIMER_BARS + GEN_BARS, temperature=temp,
                                              random_seed=candidate_noise_seed(random_seed, primer, k),
                                              beam=BeamOptions(beam_size, beam_size), decoding=decoding)
                hits = pattern > 0
                results[name].append(bar_metrics(hits[:len(primer)], hits[len(primer):need]))
        log(f"  {name}: {time.perf_counter() - t0:.1f} s")
    if with_baselines:
        train = [labels_from_pattern(p.velocity) for p in load_split(data, "train", min_bars=2)]
        tri = Trigram(train)
        results["trigram"], results["real"] = [], []
        for i, perf in enumerate(perfs):
            primer = perf.velocity[:PRIMER_BARS * STEPS_PER_BAR] > 0
            for k in range(candidates):
                rng = np.random.default_rng([random_seed, i, k])
                labels = tri.generate(labels_from_pattern(primer), GEN_BARS * STEPS_PER_BAR, rng)
                results["trigram"].append(bar_metrics(primer, hits_from_labels(labels)[len(primer):]))
            results["real"].append(bar_metrics(primer, perf.velocity[len(primer):need] > 0))
    out = {name: summarize(rows) for name, rows in results.items()}
    prim = [p.velocity[:PRIMER_BARS * STEPS_PER_BAR] > 0 for p in perfs]
    out["primers"] = {"snare": np.mean([p[:, SNARE].sum() / PRIMER_BARS for p in prim]),
                      "hats_ride": np.mean([p[:, TIMEKEEPERS].sum() / PRIMER_BARS for p in prim]),
                      "toms": np.mean([p[:, TOMS].sum() / PRIMER_BARS for p in prim])}
    return out


ROWS = [("snare hits per bar", "snare", "{:.2f}"), ("hats+ride per bar", "hats_ride", "{:.2f}"),
        ("toms per bar", "toms", "{:.2f}"), ("bars with 12+ snare hits", "roll%", "{:.1f}%"),
        ("bars with no hats/ride", "no_time%", "{:.1f}%"),
        ("bars with no hats/ride after primers with hats/ride (timekeeper lost)", "timed_time%", "{:.1f}%"),
        ("  after primers with hats/ride in every bar", "keeps_time%", "{:.1f}%"),
        ("  after primers with hats/ride in some bars", "some_time%", "{:.1f}%"),
        ("  after primers with no hats/ride", "none_time%", "{:.1f}%"),
        ("bars after primers: every / some / no hats+ride", ("keeps_bars", "some_bars", "none_bars"), "{:.0f}"),
        ("groove corr, 8-bar mean", "corr", "{:.2f}"),
        ("groove corr, bar 1", "corr1", "{:.2f}"), ("groove corr, bar 8", "corr8", "{:.2f}")]


def table(out: dict[str, dict[str, float]]) -> str:
    cols = [c for c in out if c != "primers"]
    lines = ["| metric | " + " | ".join(cols) + " | primers |", "|---" * (len(cols) + 2) + "|"]
    for label, key, fmt in ROWS:
        prim = out["primers"].get(key)
        if isinstance(key, tuple):
            lines.append(f"| {label} | " + " | ".join(" / ".join(fmt.format(out[c][k]) for k in key)
                                                       for c in cols) + " | |")
            continue
        lines.append(f"| {label} | " + " | ".join(fmt.format(out[c][key]) for c in cols)
                     + f" | {'' if prim is None else fmt.format(prim)} |")
    return "\n".join(lines)


def parse_setting(spec: str):
    """A named setting, or 'keep=0.5,top_p=0.95,cap=1.5,T=1.0' for tuning."""
    if spec in SETTINGS:
        return SETTINGS[spec]
    kv = dict(x.split("=") for x in spec.split(","))
    d = Decoding(float(kv.get("keep", 0)), float(kv.get("top_p", 1)), float(kv.get("cap", 0)),
                 bool(int(kv.get("time", 1))))
    return float(kv.get("T", 1.0)), int(kv.get("beam", 1)), d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="validation", choices=SPLITS,
                    help="the GMD split to measure on; test only on a full copy, for final figures (never used for tuning)")
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--quick", action="store_true", help="12 primers x 3 candidates")
    ap.add_argument("--primers", type=int, default=24)
    ap.add_argument("--candidates", type=int, default=3)
    ap.add_argument("--settings", default="default;plain",
                    help=f"settings separated by ';': {', '.join(SETTINGS)} or 'keep=0.5,top_p=0.95,cap=1.5,T=1.0'")
    ap.add_argument("--no-baselines", action="store_true")
    args = ap.parse_args()
    primers, cands = (12, 3) if args.quick else (args.primers, args.candidates)
    settings = {s: parse_setting(s) for s in args.settings.split(";")}
    print(f"split {args.split}, {primers} primers x {cands} candidates")
    try:
        out = evaluate(settings, split=args.split, primers=primers, candidates=cands, data=args.data,
                       with_baselines=not args.no_baselines)
    except ValueError as e:  # a split the data folder does not have
        raise SystemExit(str(e)) from None
    print(table(out))


if __name__ == "__main__":
    main()
