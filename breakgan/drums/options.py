"""The drums stage's limits and the one check of each number it is given (CLI, library and model files).

The typer options in `drums/command.py` show these ranges in --help; the library functions check again
because they are also called directly (`breakgan live` regenerates patterns from OSC values).
Everything here is pure: no torch, no files.
"""

from __future__ import annotations

import math
from typing import Any

from breakgan.drums.encoding import INPUT_SIZE, NUM_CLASSES  # fixed by the drum_kit encoding
from breakgan.errors import BreakganError, shown

# generation
MAX_BARS = 256
MAX_CANDIDATES = 99
MIN_TEMPO, MAX_TEMPO = 10.0, 400.0  # BPM, for --tempo and for a seed MIDI's own tempo
MAX_TEMPERATURE = 10.0
MAX_BEAM = 64  # --beam-size and --branch-factor
MAX_STEPS_PER_ITERATION = 512
MAX_SEED_BARS = 4096
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 192000

# architecture of a model file or of `drums train --layers` (a 3 x 2048 model is ~200 M parameters)
MAX_LAYERS = 8
MAX_LAYER_SIZE = 2048
MAX_ATTN_LENGTH = 1024

# training
MAX_TRAIN_STEPS = 10**9
MAX_BATCH = 4096
MAX_SEQUENCE_STEPS = 8192  # --max-steps: one training sequence, in 16th steps
MAX_MIN_BARS = 1024
MAX_THREADS = 1024
MAX_MINUTES = 10**6


def check_int(value: Any, option: str, lo: int, hi: int) -> int:
    """A whole number lo <= n <= hi (a float that is a whole number counts), else one line naming `option`."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise BreakganError(f"{option}: expected a whole number {lo}..{hi}, got {shown(value)}")
    return value


def check_float(value: Any, option: str, lo: float, hi: float, *, above: bool = False) -> float:
    """A finite number in [lo, hi] ((lo, hi] with above=True), else one line naming `option`."""
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        x = math.nan
    if isinstance(value, bool) or not math.isfinite(x) or not (lo < x if above else lo <= x) or x > hi:
        span = f"{'above ' if above else ''}{lo:g}..{hi:g}"
        raise BreakganError(f"{option}: expected a finite number {span}, got {shown(value)}")
    return x


def check_tempo(bpm: Any, option: str = "--tempo") -> float:
    """The one tempo rule of the drums stage: --tempo and a seed's own tempo (option = the seed file)."""
    try:
        x = float(bpm)
    except (TypeError, ValueError, OverflowError):
        x = math.nan
    if not (math.isfinite(x) and MIN_TEMPO <= x <= MAX_TEMPO):
        raise BreakganError(f"{option}: tempo {shown(bpm)} BPM is outside {MIN_TEMPO:g}..{MAX_TEMPO:g}"
                            + ("" if option == "--tempo" else "; pass --tempo BPM to play it at another tempo"))
    return x


def check_generation(*, bars: Any = 4, temperature: Any = 1.0, candidates: Any = 1, beam_size: Any = 1,
                     branch_factor: Any = 1, steps_per_iteration: Any = 1, seed_bars: Any = None,
                     sample_rate: Any = 44100, random_seed: Any = 0, drum_channel: Any = None,
                     beats_per_bar: Any = None, tempo: Any = None) -> dict[str, Any]:
    """Every number `breakgan drums` takes, checked and normalised (ints as int, floats as float)."""
    from breakgan.seeds import check_seed

    out = {
        "bars": check_int(bars, "--bars", 1, MAX_BARS),
        "temperature": check_float(temperature, "--temperature", 0.0, MAX_TEMPERATURE),
        "candidates": check_int(candidates, "--candidates", 1, MAX_CANDIDATES),
        "beam_size": check_int(beam_size, "--beam-size", 1, MAX_BEAM),
        "branch_factor": check_int(branch_factor, "--branch-factor", 1, MAX_BEAM),
        "steps_per_iteration": check_int(steps_per_iteration, "--steps-per-iteration", 1, MAX_STEPS_PER_ITERATION),
        "seed_bars": None if seed_bars is None else check_float(seed_bars, "--seed-bars", 0.0, MAX_SEED_BARS,
                                                                above=True),
        "sample_rate": check_int(sample_rate, "--sample-rate", MIN_SAMPLE_RATE, MAX_SAMPLE_RATE),
        "random_seed": check_seed(random_seed, "--random-seed"),
        "drum_channel": None if drum_channel is None else check_int(drum_channel, "--drum-channel", 1, 16),
        "beats_per_bar": None if beats_per_bar is None else check_int(beats_per_bar, "--beats-per-bar", 1, 16),
        "tempo": None if tempo is None else check_tempo(tempo),
    }
    return out


def check_config(raw: Any, where: str):
    """A DrumsRNN architecture from JSON (a model file's config, or --layers) -> DrumsConfig, every number
    bounded so that building the model cannot ask for more memory than a sane model needs."""
    from breakgan.drums.model import DrumsConfig

    if not isinstance(raw, dict):
        raise BreakganError(f"{where}: the model config must be a JSON object, got {type(raw).__name__}")
    layers = raw.get("layers", list(DrumsConfig.layers))
    if not isinstance(layers, (list, tuple)) or not 1 <= len(layers) <= MAX_LAYERS:
        raise BreakganError(f"{where}: layers must be a list of 1..{MAX_LAYERS} LSTM sizes, got {shown(layers)}")
    sizes = tuple(check_int(h, f"{where}: layer size", 1, MAX_LAYER_SIZE) for h in layers)
    config = DrumsConfig(
        input_size=check_int(raw.get("input_size", INPUT_SIZE), f"{where}: input_size", INPUT_SIZE, INPUT_SIZE),
        num_classes=check_int(raw.get("num_classes", NUM_CLASSES), f"{where}: num_classes", NUM_CLASSES,
                              NUM_CLASSES),
        layers=sizes,
        attn_length=check_int(raw.get("attn_length", DrumsConfig.attn_length), f"{where}: attn_length", 1,
                              MAX_ATTN_LENGTH),
        dropout_keep=check_float(raw.get("dropout_keep", DrumsConfig.dropout_keep), f"{where}: dropout_keep",
                                 0.0, 1.0, above=True),
    )
    return config


def parse_layers(text: str, option: str = "--layers") -> tuple[int, ...]:
    """'256,256,256' -> (256, 256, 256), bounded like a model file's config."""
    try:
        sizes = [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        sizes = []
    if not sizes:
        raise BreakganError(f"{option} {shown(text)}: expected comma-separated sizes, e.g. 256,256,256")
    return check_config({"layers": sizes}, option).layers


__all__ = ["check_int", "check_float", "check_tempo", "check_generation", "check_config", "parse_layers"]
