"""Fine-tune the shipped DrumsRNN on the GMD train split with longer sequences (issue 13, perplexity).

`breakgan drums train` starts from fresh weights and validates on chunks of its own --max-steps; this
script continues from a given model file and keeps the model card's validation convention fixed
(GMD validation split, chunks of at most 64 steps), whatever chunk length it trains on. It writes
OUT/model.safetensors (the best validation perplexity so far, float32, loadable by `drums --model` and
`drums export`) and OUT/log.jsonl. The test split is never read (load_corpus skips it).

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/drums_finetune.py /work/shared/data/groove \
        --out runs/drums-ft --max-steps 256 --batch-size 8 --learning-rate 3e-4 --minutes 25
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--init", type=Path, default=None, help="model to start from (default: the shipped one)")
    ap.add_argument("--max-steps", type=int, default=256, help="training chunk length in 16th steps")
    ap.add_argument("--eval-max-steps", type=int, default=64, help="validation chunks (model card: 64)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--learning-rate", type=float, default=3e-4)
    ap.add_argument("--clip-norm", type=float, default=3.0)
    ap.add_argument("--minutes", type=float, default=25.0)
    ap.add_argument("--eval-minutes", type=float, default=4.0, help="validate this often (wall clock)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)

    import torch

    from breakgan.drums.checkpoint import load_model, save_model
    from breakgan.drums.corpus import load_corpus
    from breakgan.drums.encoding import counter_bits
    from breakgan.drums.train import batch_indices, evaluate, make_batch

    torch.set_num_threads(1)
    a.out.mkdir(parents=True, exist_ok=False)  # never overwrite an earlier run
    t0 = time.monotonic()
    train = load_corpus([a.data], max_steps=a.max_steps).train
    val = load_corpus([a.data], max_steps=a.eval_max_steps).validation
    print(f"corpus: {len(train)} train chunks (<= {a.max_steps}), {len(val)} validation chunks "
          f"(<= {a.eval_max_steps}) in {time.monotonic() - t0:.0f} s", flush=True)

    model, meta = load_model(a.init)
    log = open(a.out / "log.jsonl", "a")

    def validate(step: int, cpu_s: float) -> float:
        m = evaluate(model, val, 128, "cpu")
        rec = {"step": step, "train_cpu_s": round(cpu_s, 1), "validation": m}
        log.write(json.dumps(rec) + "\n")
        log.flush()
        print(f"step {step} ({cpu_s / 60:.1f} cpu min): validation perplexity {m['perplexity']:.4f}", flush=True)
        return m["perplexity"]

    def keep(step: int, ppl: float) -> None:
        save_model(a.out / "model.safetensors", model,
                   {**{k: v for k, v in meta.items() if k != "path"},
                    "finetune": {"from_perplexity": start_ppl, "step": step, "perplexity": ppl,
                                 "max_steps": a.max_steps, "batch_size": a.batch_size,
                                 "learning_rate": a.learning_rate,
                                 "train_cpu_s": round(time.process_time() - cpu0, 1)}})

    best = validate(0, 0.0)
    start_ppl = best
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=a.learning_rate)
    started = time.monotonic()
    last_eval = started
    cpu0 = time.process_time()
    step = 0
    while time.monotonic() - started < a.minutes * 60:
        idx = batch_indices(len(train), a.batch_size, a.seed, step)
        inp, tgt, mask = make_batch(train, idx)
        torch.manual_seed(a.seed * 1_000_003 + step)  # dropout: deterministic per step
        logits = model(torch.from_numpy(inp), torch.from_numpy(counter_bits(np.arange(inp.shape[1]))))
        m = torch.from_numpy(mask).flatten()
        nll = torch.nn.functional.cross_entropy(logits.flatten(0, 1), torch.from_numpy(tgt).flatten(),
                                                reduction="none")
        loss = (nll * m).sum() / m.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip_norm)
        opt.step()
        step += 1
        log.write(json.dumps({"step": step, "loss": float(loss.detach())}) + "\n")
        if time.monotonic() - last_eval > a.eval_minutes * 60:
            ppl = validate(step, time.process_time() - cpu0)
            model.train()
            last_eval = time.monotonic()
            if ppl < best:
                best = ppl
                keep(step, ppl)
    ppl = validate(step, time.process_time() - cpu0)
    if ppl < best:
        best = ppl
        keep(step, ppl)
    print(f"done: {step} steps, best validation perplexity {best:.4f} (start {start_ppl:.4f})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
