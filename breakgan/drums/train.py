"""`breakgan drums train`: fit DrumsRNN on MIDI folders, with validation metrics and resumable checkpoints.

MODEL_DIR holds `model.safetensors` (the latest weights, what `breakgan drums --model` loads),
`checkpoint.safetensors` (weights, Adam state, step, options in one atomic file: resume reads it; the
three-file state of earlier versions is still read),
`metrics.json` (latest validation metrics and the unigram / bigram baselines), `log.jsonl`,
TensorBoard events in `tb/`, and `breakgan.json` (stage "drums-train").
The batch order is a pure function of (seed, step), so a resumed run continues exactly.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from breakgan.console import info, progress, warn
from breakgan.errors import BreakganError
from breakgan.stage import make_record, write_json_atomic, write_record


@dataclass
class DrumsTrainOptions:
    steps: int = 20000  # optimiser steps in total (a resumed run counts from where it stopped)
    batch_size: int = 128  # Magenta's drum_kit hparams
    learning_rate: float = 1e-3
    clip_norm: float = 3.0
    max_steps: int = 512  # training sequences are split into chunks of at most this many 16th steps
    min_bars: int = 4  # shorter drum tracks are dropped
    gap_bars: float = 1.0  # a drum track ends after this many empty bars
    validation_fraction: float = 0.1  # used only when a folder has no GMD info.csv
    eval_every: int = 200
    save_every: int = 100
    minutes: float = 0.0  # stop (and save) after this much wall-clock time; 0 = no limit
    seed: int = 0
    device: str = "cpu"
    threads: int = 0  # torch CPU threads; 0 = torch's default
    layers: tuple[int, ...] = (256, 256, 256)  # LSTM sizes (Magenta drum_kit: 3 x 256)
    dropout_keep: float = 0.5  # keep probability of each LSTM layer's output in training
    attn_length: int = 32


def batch_indices(n: int, batch_size: int, seed: int, step: int) -> np.ndarray:
    """Indices of the sequences in batch `step`: epochs are seeded permutations (pure function)."""
    per_epoch = max(1, n // batch_size)
    epoch, k = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    return perm[k * batch_size:(k + 1) * batch_size] if n >= batch_size else perm


def make_batch(seqs: list[np.ndarray], idx: np.ndarray):
    """-> inputs (B, T), targets (B, T), mask (B, T) as numpy; T = longest sequence - 1."""
    T = max(len(seqs[i]) for i in idx) - 1
    inputs = np.zeros((len(idx), T), np.int64)
    targets = np.zeros((len(idx), T), np.int64)
    mask = np.zeros((len(idx), T), np.float32)
    for r, i in enumerate(idx):
        s = seqs[i]
        inputs[r, :len(s) - 1] = s[:-1]
        targets[r, :len(s) - 1] = s[1:]
        mask[r, :len(s) - 1] = 1
    return inputs, targets, mask


def batch_metrics(logits, targets, mask) -> dict[str, float]:
    """Sums for Magenta's metrics: loss, accuracy, event_accuracy, no_event_accuracy."""
    import torch

    nll = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
    m = mask.flatten()
    correct = (logits.argmax(-1).flatten() == targets.flatten()).float() * m
    event = (targets.flatten() != 0).float() * m
    return {"nll": float((nll * m).sum()), "n": float(m.sum()), "correct": float(correct.sum()),
            "event_correct": float((correct * event).sum()), "events": float(event.sum()),
            "no_event_correct": float((correct * (1 - event) * m).sum()),
            "no_events": float(((1 - event) * m).sum())}


def evaluate(model, seqs: list[np.ndarray], batch_size: int, device: str) -> dict[str, float]:
    import torch

    from breakgan.drums.encoding import counter_bits

    if not seqs:
        return {}
    model.eval()
    totals: dict[str, float] = {}
    order = np.argsort([len(s) for s in seqs], kind="stable")
    with torch.inference_mode():
        for k in range(0, len(seqs), batch_size):
            inp, tgt, mask = make_batch(seqs, order[k:k + batch_size])
            counters = torch.from_numpy(counter_bits(np.arange(inp.shape[1]))).to(device)
            logits = model(torch.from_numpy(inp).to(device), counters)
            for key, v in batch_metrics(logits, torch.from_numpy(tgt).to(device),
                                        torch.from_numpy(mask).to(device)).items():
                totals[key] = totals.get(key, 0.0) + v
    model.train()
    loss = totals["nll"] / max(totals["n"], 1)
    return {"loss": loss, "perplexity": math.exp(loss), "accuracy": totals["correct"] / max(totals["n"], 1),
            "event_accuracy": totals["event_correct"] / max(totals["events"], 1),
            "no_event_accuracy": totals["no_event_correct"] / max(totals["no_events"], 1)}


def _save_state(out: Path, model, optimizer, step: int, options: DrumsTrainOptions, extra: dict) -> None:
    """The training checkpoint first (one atomic file), then the model file `drums --model` loads."""
    from breakgan.drums.checkpoint import save_model, save_train_state

    save_train_state(out, model, optimizer, step, {"options": asdict(options), **extra})
    save_model(out / "model.safetensors", model, {"step": step, **extra})


def check_train_options(o: DrumsTrainOptions) -> DrumsTrainOptions:
    """Every number of `drums train`, bounded and finite (the CLI's ranges, for library callers too)."""
    from breakgan.drums import options as lim
    from breakgan.seeds import check_seed

    return replace(
        o,
        steps=lim.check_int(o.steps, "--steps", 1, lim.MAX_TRAIN_STEPS),
        batch_size=lim.check_int(o.batch_size, "--batch-size", 1, lim.MAX_BATCH),
        learning_rate=lim.check_float(o.learning_rate, "--learning-rate", 0.0, 10.0, above=True),
        clip_norm=lim.check_float(o.clip_norm, "--clip-norm", 0.0, 1e6, above=True),
        max_steps=lim.check_int(o.max_steps, "--max-steps", 16, lim.MAX_SEQUENCE_STEPS),
        min_bars=lim.check_int(o.min_bars, "--min-bars", 1, lim.MAX_MIN_BARS),
        gap_bars=lim.check_float(o.gap_bars, "gap_bars", 0.0, lim.MAX_MIN_BARS, above=True),
        validation_fraction=lim.check_float(o.validation_fraction, "--validation-fraction", 0.0, 0.9),
        eval_every=lim.check_int(o.eval_every, "--eval-every", 1, lim.MAX_TRAIN_STEPS),
        save_every=lim.check_int(o.save_every, "--save-every", 1, lim.MAX_TRAIN_STEPS),
        minutes=lim.check_float(o.minutes, "--minutes", 0.0, lim.MAX_MINUTES),
        seed=check_seed(o.seed, "--random-seed"),
        threads=lim.check_int(o.threads, "--threads", 0, lim.MAX_THREADS),
        layers=lim.check_config({"layers": list(o.layers)}, "--layers").layers,
        dropout_keep=lim.check_float(o.dropout_keep, "--dropout-keep", 0.05, 1.0),
        attn_length=lim.check_int(o.attn_length, "attn_length", 1, lim.MAX_ATTN_LENGTH),
    )


def train_drums(midi_dirs: list[Path], out: Path, options: DrumsTrainOptions, *, resume: bool = True) -> dict:
    """Train (or resume) a DrumsRNN in `out`; returns the final metrics dict.

    `out` follows the output rule (new, empty, or an earlier drums-train folder, which is resumed) and is
    locked while training; its breakgan.json is written first, so an interrupted folder is still ours.
    """
    from breakgan.device import resolve_device
    from breakgan.stage import RECORD_NAME, claim_out

    options = check_train_options(options)
    device = str(resolve_device(options.device))  # before anything is written
    with claim_out(out, "drums-train", inputs=midi_dirs) as out:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BreakganError(f"{out}: cannot create model folder ({e.strerror})") from None
        if not (out / RECORD_NAME).exists():
            write_record(out, make_record("drums-train", asdict(options), {}, status="running",
                                          midi_dirs=[str(d) for d in midi_dirs]))
        return _train_drums(midi_dirs, out, options, device, resume=resume)


def _train_drums(midi_dirs: list[Path], out: Path, options: DrumsTrainOptions, device: str, *,
                 resume: bool) -> dict:
    import torch
    from rich.progress import TextColumn

    from breakgan.drums.corpus import baseline_perplexities, load_corpus
    from breakgan.drums.encoding import counter_bits
    from breakgan.drums.model import DrumsConfig, DrumsRNN

    from breakgan.drums.checkpoint import has_train_state, load_train_state

    if options.threads:
        torch.set_num_threads(options.threads)

    t0 = time.monotonic()
    with progress(transient=True) as bar:
        task = bar.add_task("reading MIDI", total=None)
        corpus = load_corpus([Path(d) for d in midi_dirs], min_bars=options.min_bars,
                             max_steps=options.max_steps, gap_bars=options.gap_bars,
                             validation_fraction=options.validation_fraction,
                             on_file=lambda f: bar.advance(task))
    if not corpus.train:
        raise BreakganError(f"{', '.join(map(str, midi_dirs))}: no drum tracks of at least "
                            f"{options.min_bars} bars found (drums must be on channel 10 / is_drum)")
    for p in corpus.problems[:5]:
        warn(p)
    baselines = baseline_perplexities(corpus.train, corpus.validation) if corpus.validation else {}
    info(f"corpus: {corpus.files['train']} train files -> {len(corpus.train)} sequences, "
         f"{corpus.files['validation']} validation files -> {len(corpus.validation)} sequences, "
         f"{corpus.files['skipped']} skipped ({time.monotonic() - t0:.0f} s)")
    if baselines:
        info(f"baseline validation perplexity: unigram {baselines['unigram']:.3f}, bigram {baselines['bigram']:.3f}")

    torch.manual_seed(options.seed)
    model = DrumsRNN(DrumsConfig(layers=tuple(options.layers), dropout_keep=options.dropout_keep,
                                 attn_length=options.attn_length)).to(device)
    model.reset_parameters(torch.Generator().manual_seed(options.seed))
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=options.learning_rate)
    step = 0
    if resume and has_train_state(out):
        step = load_train_state(out, model, optimizer)
        info(f"resuming {out} at step {step}")
    data = {"train_files": corpus.files["train"], "validation_files": corpus.files["validation"],
            "train_sequences": len(corpus.train), "validation_sequences": len(corpus.validation),
            "train_steps_16th": int(sum(len(s) for s in corpus.train)),
            "validation_steps_16th": int(sum(len(s) for s in corpus.validation))}
    extra = {"data": data, "baselines": baselines}

    from torch.utils.tensorboard import SummaryWriter

    tb = SummaryWriter(str(out / "tb"))
    log = open(out / "log.jsonl", "a")
    metrics: dict = {}
    started = time.monotonic()
    last_saved = step

    def checkpoint(final: bool = False):
        nonlocal metrics, last_saved
        if corpus.validation and (final or step % options.eval_every == 0):
            metrics = evaluate(model, corpus.validation, options.batch_size, device)
            for k, v in metrics.items():
                tb.add_scalar(f"validation/{k}", v, step)
            log.write(json.dumps({"step": step, "validation": metrics}) + "\n")
            log.flush()
        _save_state(out, model, optimizer, step, options, {**extra, "validation": metrics})
        last_saved = step

    try:
        with progress(TextColumn("loss {task.fields[loss]}")) as bar:
            task = bar.add_task("train drums", total=options.steps, completed=step, loss="-")
            while step < options.steps:
                if options.minutes and time.monotonic() - started > options.minutes * 60:
                    info(f"time limit of {options.minutes:g} minutes reached at step {step}")
                    break
                idx = batch_indices(len(corpus.train), options.batch_size, options.seed, step)
                inp, tgt, mask = make_batch(corpus.train, idx)
                torch.manual_seed((options.seed * 1_000_003 + step) % 2**64)  # dropout: deterministic per step
                counters = torch.from_numpy(counter_bits(np.arange(inp.shape[1]))).to(device)
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
                    logits = model(torch.from_numpy(inp).to(device), counters)
                logits = logits.float()
                m = torch.from_numpy(mask).to(device)
                nll = torch.nn.functional.cross_entropy(logits.flatten(0, 1), torch.from_numpy(tgt).to(device).flatten(),
                                                        reduction="none")
                loss = (nll * m.flatten()).sum() / m.sum()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), options.clip_norm)
                optimizer.step()
                step += 1
                lv = float(loss.detach())
                tb.add_scalar("train/loss", lv, step)
                tb.add_scalar("train/perplexity", math.exp(lv), step)
                tb.add_scalar("train/grad_norm", float(gnorm), step)
                log.write(json.dumps({"step": step, "loss": lv, "grad_norm": float(gnorm)}) + "\n")
                log.flush()
                bar.update(task, completed=step, loss=f"{lv:.3f}")
                if step % options.save_every == 0 or step % options.eval_every == 0:
                    checkpoint()
                    if metrics:
                        bar.console.print(f"step {step}: validation perplexity {metrics['perplexity']:.3f}, "
                                          f"accuracy {metrics['accuracy']:.3f}")
    finally:
        if step != last_saved or not (out / "model.safetensors").is_file() or (corpus.validation and not metrics):
            checkpoint(final=True)
        tb.close()
        log.close()
    result = {"step": step, "validation": metrics, **extra}
    write_json_atomic(out / "metrics.json", result)
    write_record(out, make_record("drums-train", asdict(options), {}, **result,
                                  midi_dirs=[str(d) for d in midi_dirs]))
    return result


def export_model(model_dir: Path, out_file: Path, dtype: str = "float16") -> Path:
    """Write a trained model as a small standalone safetensors file (float16 by default)."""
    import torch

    from breakgan.drums.checkpoint import load_model, save_model

    from breakgan.drums.checkpoint import FORMAT
    from breakgan.stage import check_out_weights

    check_out_weights(out_file, [FORMAT], option="OUT_FILE", inputs=[model_dir])
    model, meta = load_model(model_dir)
    meta.pop("path", None)
    return save_model(out_file, model, meta, dtype=getattr(torch, dtype))
