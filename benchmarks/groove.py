"""Humanize model: velocity and timing-offset errors on the Groove MIDI Dataset's validation split.

    python benchmarks/groove.py [--model FILE] [--data /work/shared/data/groove] [--split validation]

For every hit of every 4/4 validation performance (quantised to the 16th grid, offsets kept), the
model predicts velocity and timing offset from the hits alone (and the tempo). Baselines, fitted on
the train split: (a) one constant (the train mean velocity and offset), (b) the per-part,
per-position-in-bar mean. MAE in MIDI velocity units and in ms at each file's tempo.
Target: the model beats (b) by at least 15% on both.
"""

from __future__ import annotations

import argparse

from breakgan.drums.groove.data import SPLITS, load_split
from breakgan.drums.groove.evaluate import BASELINE, errors
from breakgan.drums.groove.model import load


def evaluate(model=None, data: str = "/work/shared/data/groove", split: str = "validation"):
    net, _ = load(model)
    return errors(net, load_split(data, "train", min_bars=1), load_split(data, split, min_bars=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--data", default="/work/shared/data/groove")
    ap.add_argument("--split", default="validation", choices=SPLITS,
                    help="the GMD split to measure on; test only on a full copy, for final figures (never used for tuning)")
    args = ap.parse_args()
    try:
        out = evaluate(args.model, args.data, args.split)
    except ValueError as e:  # a split the data folder does not have
        raise SystemExit(str(e)) from None
    gain = out.pop("gain")
    print(f"split {args.split}: mean absolute error per hit")
    print("| predictor | velocity MAE | timing MAE (ms) |\n|---|---|---|")
    for name, e in out.items():
        print(f"| {name} | {e['vel']:.2f} | {e['ms']:.2f} |")
    print(f"model vs {BASELINE}: velocity {100 * gain['vel']:.1f}% lower, "
          f"timing {100 * gain['ms']:.1f}% lower (target: >= 15% on both)")


if __name__ == "__main__":
    main()
