"""The drums stage: seed -> DrumsRNN candidates -> a folder of MIDI, stems, mix, onsets and piano rolls."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from breakgan.console import info, progress, warn
from breakgan.drums.encoding import hits_from_labels, labels_from_pattern
from breakgan.drums.options import check_generation, check_tempo
from breakgan.drums.seed import Seed, seed_from_midi, seed_from_pattern
from breakgan.errors import BreakganError
from breakgan.parts import PARTS

GENERATED_VELOCITY = 100  # Magenta's decoding velocity, used for hits of parts absent from the seed
TAIL_S = 1.0  # audio runs this long past the pattern so cymbals can ring out
DEFAULT_PRIMER = "kick: x"  # Magenta's default primer: a single kick


def load_seed(seed_midi=None, seed_pattern: str | None = None, *, drum_channel: int | None = None,
              beats_per_bar: int | None = None, tempo: float | None = None) -> Seed:
    """The seed, played at `tempo` if given, else at its own tempo; either must pass `check_tempo`."""
    if seed_midi is not None and seed_pattern is not None:
        raise BreakganError("give either a seed MIDI or a seed pattern, not both")
    if tempo is not None:
        tempo = check_tempo(tempo, "--tempo")
    if seed_midi is not None:
        seed = seed_from_midi(seed_midi, drum_channel=drum_channel, beats_per_bar=beats_per_bar)
    else:
        seed = seed_from_pattern(seed_pattern if seed_pattern is not None else DEFAULT_PRIMER,
                                 beats_per_bar=beats_per_bar)
    seed.tempo = tempo if tempo is not None else check_tempo(seed.tempo, seed.source)
    return seed


@functools.lru_cache(maxsize=4)
def _runtime(path: str, mtime: float, device: str):
    from breakgan.drums.checkpoint import load_model
    from breakgan.drums.generate import FastDrums

    model, meta = load_model(path, device)
    return FastDrums(model), meta


def runtime_model(model=None, device: str = "cpu"):
    """(FastDrums, model info) for a model path or None (shipped model); cached per file."""
    from breakgan.drums.checkpoint import resolve_model_path

    p = resolve_model_path(model)
    return _runtime(str(p), p.stat().st_mtime, device)


def candidate_seed(random_seed: int, index: int, primer: np.ndarray | None = None) -> int:
    """Random seed of candidate `index`: independent of how many candidates are asked for. With the
    primer (the seed pattern used), from (random seed, seed content, index), so different seeds never
    share sampling noise (generate.candidate_noise_seed)."""
    if primer is not None:
        from breakgan.drums.generate import candidate_noise_seed

        return candidate_noise_seed(random_seed, primer, index)
    seed = int(random_seed)
    words = [seed & 0xFFFFFFFF, index] + ([seed >> 32] if seed >> 32 else [])  # seeds < 2**32 as before
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def seed_steps_used(seed: Seed, seed_bars: float | None, total: int) -> int:
    n = len(seed.pattern) if seed_bars is None else int(round(seed_bars * seed.steps_per_bar))
    if n < 1:
        raise BreakganError(f"--seed-bars {seed_bars:g}: use at least one 16th step of the seed")
    return min(n, total)


def primer_pattern(seed: Seed, steps: int) -> np.ndarray:
    out = np.zeros((steps, len(PARTS)), np.uint8)
    n = min(steps, len(seed.pattern))
    out[:n] = seed.pattern[:n]
    return out


def generate_pattern(runtime, seed: Seed, *, bars: int, temperature: float, random_seed: int,
                     seed_bars: float | None = None, beam=None, decoding=None) -> tuple[np.ndarray, int]:
    """-> ((bars * steps_per_bar, 9) velocity pattern, number of seed steps at its start).

    decoding: a generate.Decoding (None = the bare model's distribution, Magenta's sampler)."""
    from breakgan.drums.generate import PLAIN, BeamOptions

    total = bars * seed.steps_per_bar
    n_seed = seed_steps_used(seed, seed_bars, total)
    primer = primer_pattern(seed, n_seed)
    labels = runtime.generate(labels_from_pattern(primer), total, temperature=temperature, seed=random_seed,
                              beam=beam or BeamOptions(), decoding=decoding or PLAIN,
                              steps_per_bar=seed.steps_per_bar)
    hits = hits_from_labels(labels)
    # generated hits take the part's mean velocity in the seed, else Magenta's 100
    vel = np.full(len(PARTS), GENERATED_VELOCITY, np.int64)
    for k in range(len(PARTS)):
        v = primer[:, k][primer[:, k] > 0]
        if len(v):
            vel[k] = int(round(v.mean()))
    pattern = (hits * vel[None]).astype(np.uint8)
    pattern[:n_seed] = primer
    return pattern, n_seed


def generate_onsets(seed_midi=None, *, seed_pattern: str | None = None, model=None, bars: int = 4,
                    tempo: float | None = None, temperature: float = 1.0, random_seed: int = 0,
                    drum_channel: int | None = None, decoding=None, humanize: float = 0.0) -> dict:
    """One generated pattern as the onsets.json structure (no files written); model None = shipped.

    Without a seed MIDI or pattern the primer is Magenta's default, a single kick. decoding: a
    generate.Decoding (None = the shipped defaults); humanize 0..1 (groove model amount, 0 = off).
    """
    from breakgan.drums.generate import Decoding
    from breakgan.drums.groove.apply import check_amount, humanize as humanize_pattern
    from breakgan.drums.output import onsets_dict

    humanize = check_amount(humanize)

    checked = check_generation(bars=bars, temperature=temperature, random_seed=random_seed,
                               drum_channel=drum_channel, tempo=tempo)
    bars, temperature, random_seed = checked["bars"], checked["temperature"], checked["random_seed"]
    seed = load_seed(seed_midi, seed_pattern, drum_channel=drum_channel, tempo=tempo)
    runtime, _ = runtime_model(model)
    rs = candidate_seed(random_seed, 1, primer_pattern(seed, seed_steps_used(seed, None, bars * seed.steps_per_bar)))
    pattern, _ = generate_pattern(runtime, seed, bars=bars, temperature=temperature, random_seed=rs,
                                  decoding=decoding or Decoding())
    pattern, offsets = humanize_pattern(pattern, seed.tempo, humanize, seed=rs)
    return onsets_dict(pattern, seed.tempo, seed.beats_per_bar, audio=None, offsets=offsets)


def write_candidate(cdir: Path, pattern: np.ndarray, *, tempo: float, beats_per_bar: int, parts, synth,
                    sample_rate: int, seed_steps: int, title: str, offsets: np.ndarray | None = None) -> dict:
    """One candidate folder: pattern.mid, parts/*.mid, stems/*.wav, mix.wav (the selected parts),
    onsets.json, pianoroll.png; all follow the (humanized) velocities and offsets. -> onsets, mix gain."""
    from breakgan.drums.output import midi_bytes, notes_of, onsets_dict, step_seconds, write_pianoroll, write_wav
    from breakgan.stage import write_json_atomic

    dt = step_seconds(tempo)
    (cdir / "parts").mkdir(parents=True)
    (cdir / "stems").mkdir()
    (cdir / "pattern.mid").write_bytes(midi_bytes(pattern, tempo, beats_per_bar, offsets=offsets))
    duration = len(pattern) * dt
    mix = None
    for part in PARTS:
        (cdir / "parts" / f"{part}.mid").write_bytes(
            midi_bytes(pattern, tempo, beats_per_bar, parts=(part,), name=part, offsets=offsets))
        stem = synth.render(notes_of(pattern, tempo, (part,), offsets=offsets), dt, duration + TAIL_S)
        write_wav(cdir / "stems" / f"{part}.wav", stem, sample_rate)
        if part in parts:
            mix = stem.copy() if mix is None else mix + stem
    peak = float(np.abs(mix).max()) if mix is not None else 0.0
    gain = 0.99 / peak if peak > 0.99 else 1.0  # keep the sum of stems from clipping
    write_wav(cdir / "mix.wav", mix * gain, sample_rate)
    onsets = onsets_dict(pattern, tempo, beats_per_bar, selected_parts=parts, offsets=offsets)
    write_json_atomic(cdir / "onsets.json", onsets)
    write_pianoroll(cdir / "pianoroll.png", pattern, beats_per_bar, seed_steps, title=title)
    return {"onsets": onsets, "mix_gain": gain}


def run_drums(seed_midi, out, *, seed_pattern: str | None = None, bars: int = 4, tempo: float | None = None,
              temperature: float = 1.0, candidates: int = 1, beam_size: int = 1, branch_factor: int = 1,
              steps_per_iteration: int = 1, seed_bars: float | None = None, parts=PARTS,
              drum_channel: int | None = None, beats_per_bar: int | None = None, model=None,
              soundfont=None, sample_rate: int = 44100, random_seed: int = 0, decoding=None,
              humanize: float = 0.0, groove_model=None) -> Path:
    """Generate `candidates` patterns from the seed and write DIR/cand-NN/ folders + DIR/breakgan.json.

    decoding: a generate.Decoding (None = the shipped defaults); humanize: 0..1, the groove model's
    velocities and timing (0 = the quantized pattern)."""
    from breakgan.drums.generate import BeamOptions, Decoding
    from breakgan.drums.groove.apply import check_amount, groove_model as load_groove
    from breakgan.drums.groove.apply import humanize as humanize_pattern
    from breakgan.drums.synth import DrumSynth, check_soundfont
    from breakgan.stage import check_out, make_record, output_dir, write_record

    humanize = check_amount(humanize)
    decoding = decoding or Decoding()

    out = Path(out)
    checked = check_generation(bars=bars, temperature=temperature, candidates=candidates, beam_size=beam_size,
                               branch_factor=branch_factor, steps_per_iteration=steps_per_iteration,
                               seed_bars=seed_bars, sample_rate=sample_rate, random_seed=random_seed,
                               drum_channel=drum_channel, beats_per_bar=beats_per_bar, tempo=tempo)
    bars, temperature, candidates = checked["bars"], checked["temperature"], checked["candidates"]
    beam_size, branch_factor = checked["beam_size"], checked["branch_factor"]
    steps_per_iteration, seed_bars = checked["steps_per_iteration"], checked["seed_bars"]
    sample_rate, random_seed = checked["sample_rate"], checked["random_seed"]
    parts = tuple(parts) or PARTS
    # --out is checked again when written; checked now so a refusal comes before any warning or work
    check_out(out, "drums", inputs=[p for p in (seed_midi, model, soundfont) if p is not None])
    seed = load_seed(seed_midi, seed_pattern, drum_channel=drum_channel, beats_per_bar=beats_per_bar,
                     tempo=tempo)
    sf_path = check_soundfont(soundfont)  # fail before any work
    runtime, model_info = runtime_model(model)
    if humanize > 0:
        load_groove(groove_model)  # a bad groove model fails before any work
        if seed.beats_per_bar != 4:
            warn(f"{seed.source}: {seed.beats_per_bar} beats per bar; the groove model learned 4/4 grooves")
    if seed.tempo_changes:
        info(f"{seed.source}: tempo map with {seed.tempo_changes} change(s); notes placed in musical time, "
             f"played at {seed.tempo:.2f} BPM")
    if seed.ignored_pitches:
        warn(f"{seed.source}: pitches {', '.join(map(str, seed.ignored_pitches[:12]))} are not in the 9 drum "
             f"classes and were ignored")
    total = bars * seed.steps_per_bar
    if len(seed.pattern) > total and seed_bars is None:
        warn(f"{seed.source}: seed is {len(seed.pattern) / seed.steps_per_bar:g} bars, longer than --bars {bars}; "
             f"using its first {bars} bars (nothing left to generate: raise --bars or lower --seed-bars)")
    beam = BeamOptions(beam_size, branch_factor, steps_per_iteration)
    options = {"bars": bars, "tempo": seed.tempo, "temperature": temperature, "candidates": candidates,
               "beam_size": beam_size, "branch_factor": branch_factor, "steps_per_iteration": steps_per_iteration,
               "seed_bars": seed_bars, "parts": list(parts), "drum_channel": drum_channel,
               "beats_per_bar": seed.beats_per_bar, "sample_rate": sample_rate, "random_seed": random_seed,
               "seed_pattern": seed_pattern, "groove_keep": decoding.groove_keep, "top_p": decoding.top_p,
               "density_cap": decoding.density_cap, "keep_time": decoding.keep_time, "humanize": humanize}
    inputs = {"model": model_info["path"], "soundfont": sf_path}
    if seed_midi is not None:
        inputs["seed"] = seed_midi
    if humanize > 0:
        from breakgan.drums.groove.model import SHIPPED as shipped_groove

        inputs["groove_model"] = Path(groove_model) if groove_model is not None else shipped_groove
    names = []
    used = primer_pattern(seed, seed_steps_used(seed, seed_bars, total))
    with (output_dir(out, "drums", inputs=inputs.values()) as tmp, DrumSynth(sf_path, sample_rate) as synth,
          progress() as bar):
        task = bar.add_task(f"drums -> {out.name}", total=candidates)
        for i in range(1, candidates + 1):
            rs = candidate_seed(random_seed, i, used)
            pattern, n_seed = generate_pattern(runtime, seed, bars=bars, temperature=temperature,
                                               random_seed=rs, seed_bars=seed_bars, beam=beam, decoding=decoding)
            pattern, offsets = humanize_pattern(pattern, seed.tempo, humanize, seed=rs, model=groove_model)
            name = f"cand-{i:02d}"
            written = write_candidate(tmp / name, pattern, tempo=seed.tempo, beats_per_bar=seed.beats_per_bar,
                                      parts=parts, synth=synth, sample_rate=sample_rate, seed_steps=n_seed,
                                      title=f"{out.name}/{name}  {seed.tempo:.1f} BPM",
                                      offsets=offsets if humanize > 0 else None)
            counts = {p: len(v) for p, v in written["onsets"]["parts"].items()}
            write_record(tmp / name, make_record("drums", {**options, "candidate": i, "candidate_seed": rs}, {},
                                                 candidate=i, seed_steps=n_seed, steps=len(pattern),
                                                 hits=counts, mix_gain=written["mix_gain"]))
            names.append(name)
            bar.advance(task)
        write_record(tmp, make_record("drums", options, inputs, candidates=names,
                                      tempo=seed.tempo, bars=bars, beats_per_bar=seed.beats_per_bar,
                                      model=os.fspath(model_info["path"]),
                                      model_info={k: v for k, v in model_info.items() if k != "path"}))
    info(f"wrote {out} ({candidates} candidate{'s' if candidates > 1 else ''}, {bars} bars at "
         f"{seed.tempo:.1f} BPM)")
    return out
