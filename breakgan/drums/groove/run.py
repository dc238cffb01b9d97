"""`breakgan drums groove`: any drum MIDI -> a drums folder with the groove model's dynamics."""

from __future__ import annotations

import os
from pathlib import Path

from breakgan.console import info, warn
from breakgan.parts import PARTS


def run_groove(pattern_midi, out, *, amount: float = 1.0, tempo: float | None = None,
               drum_channel: int | None = None, parts=PARTS, soundfont=None, sample_rate: int = 44100,
               random_seed: int = 0, model=None) -> Path:
    """Quantize the MIDI's drums to 16ths (the seed reader), humanize them, and write OUT/cand-01/ (the
    layout of `breakgan drums`, so render and live read it) and OUT/breakgan.json."""
    from breakgan.drums.groove.apply import check_amount, groove_model, humanize
    from breakgan.drums.groove.model import SHIPPED
    from breakgan.drums.options import check_generation
    from breakgan.drums.run import load_seed, write_candidate
    from breakgan.drums.synth import DrumSynth, check_soundfont
    from breakgan.stage import make_record, output_dir, write_record

    out = Path(out)
    amount = check_amount(amount, "--amount")
    checked = check_generation(sample_rate=sample_rate, random_seed=random_seed, drum_channel=drum_channel,
                               tempo=tempo)
    sample_rate, random_seed = checked["sample_rate"], checked["random_seed"]
    seed = load_seed(pattern_midi, None, drum_channel=drum_channel, tempo=tempo)
    sf_path = check_soundfont(soundfont)
    _, meta = groove_model(model)
    if seed.ignored_pitches:
        warn(f"{seed.source}: pitches {', '.join(map(str, seed.ignored_pitches[:12]))} are not in the 9 drum "
             f"classes and were ignored")
    if seed.beats_per_bar != 4:
        warn(f"{seed.source}: {seed.beats_per_bar} beats per bar; the groove model learned 4/4 grooves")
    pattern, offsets = humanize(seed.pattern, seed.tempo, amount, seed=random_seed, model=model)
    model_path = Path(model) if model is not None else SHIPPED
    inputs = {"pattern": Path(pattern_midi), "groove_model": model_path, "soundfont": sf_path}
    options = {"amount": amount, "tempo": seed.tempo, "drum_channel": drum_channel, "parts": list(parts),
               "sample_rate": sample_rate, "random_seed": random_seed, "beats_per_bar": seed.beats_per_bar}
    with output_dir(out, "drums", inputs=inputs.values()) as tmp, DrumSynth(sf_path, sample_rate) as synth:
        written = write_candidate(tmp / "cand-01", pattern, tempo=seed.tempo, beats_per_bar=seed.beats_per_bar,
                                  parts=tuple(parts) or PARTS, synth=synth, sample_rate=sample_rate,
                                  seed_steps=0, title=f"{out.name}  {seed.tempo:.1f} BPM, humanize {amount:g}",
                                  offsets=offsets if amount > 0 else None)
        counts = {p: len(v) for p, v in written["onsets"]["parts"].items()}
        write_record(tmp / "cand-01", make_record("drums", {**options, "candidate": 1}, {}, candidate=1,
                                                  steps=len(pattern), hits=counts, mix_gain=written["mix_gain"]))
        write_record(tmp, make_record("drums", options, inputs, candidates=["cand-01"], tempo=seed.tempo,
                                      bars=len(pattern) / seed.steps_per_bar, beats_per_bar=seed.beats_per_bar,
                                      humanize=amount, groove_model=os.fspath(model_path),
                                      groove_model_info={k: meta[k] for k in ("train_steps", "train_seconds")
                                                         if k in meta}))
    info(f"wrote {out} ({len(pattern) // seed.steps_per_bar} bars at {seed.tempo:.1f} BPM, humanize {amount:g})")
    return out
