"""`breakgan drums`: seed MIDI -> DrumsRNN patterns per part, stems and audio; `drums train` / `export`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from breakgan.drums import options as lim
from breakgan.drums import smf
from breakgan.errors import BreakganError

app = typer.Typer(
    help="Generate drum patterns per part with DrumsRNN (Magenta drum_kit), or train the model.",
    invoke_without_command=True,
    no_args_is_help=False,
)


@app.callback(invoke_without_command=True)
def drums(
    ctx: typer.Context,
    seed: Optional[Path] = typer.Option(None, "--seed", help="Seed (primer) MIDI file; drums on channel 10 "
                                        f"or an is_drum track. At most {smf.MAX_MIDI_BYTES // 2**20} MB, "
                                        f"{smf.MAX_TRACKS} tracks, {smf.MAX_EVENTS} events."),
    seed_pattern: Optional[str] = typer.Option(
        None, "--seed-pattern",
        help="Seed as a text grid instead of a MIDI file: one line per part, one character per 16th: "
             "'x' hit, 'X' accent, 'o' ghost note, '.' or '-' rest ('|' and spaces ignored); lines "
             "separated by newlines or ';', e.g. "
             "'kick: x...x...x...x...; snare: ....x.......x...'."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (cand-01/, cand-02/, ... inside)."),
    bars: int = typer.Option(4, "--bars", min=1, max=lim.MAX_BARS,
                              help="Length of each pattern in bars, seed included."),
    tempo: Optional[float] = typer.Option(None, "--tempo",
                                          help=f"Tempo in BPM, {lim.MIN_TEMPO:g}..{lim.MAX_TEMPO:g} (default: the "
                                               "seed's first tempo, or 120; a seed's own tempo must be in the "
                                               "same range)."),
    temperature: float = typer.Option(1.0, "--temperature", min=0.0, max=lim.MAX_TEMPERATURE,
                                      help="Sampling temperature; 0 = always the likeliest event, above ~1.5 is "
                                           "near random."),
    candidates: int = typer.Option(1, "--candidates", "-n", min=1, max=lim.MAX_CANDIDATES,
                                    help="How many patterns to generate."),
    beam_size: int = typer.Option(1, "--beam-size", min=1, max=lim.MAX_BEAM,
                                  help="Beam search: sequences kept (Magenta's beam_size)."),
    branch_factor: int = typer.Option(1, "--branch-factor", min=1, max=lim.MAX_BEAM,
                                      help="Beam search: samples drawn from each kept sequence per iteration."),
    steps_per_iteration: int = typer.Option(1, "--steps-per-iteration", min=1, max=lim.MAX_STEPS_PER_ITERATION,
                                            help="Beam search: steps generated between prunings."),
    seed_bars: Optional[float] = typer.Option(None, "--seed-bars", min=0.0, max=lim.MAX_SEED_BARS,
                                              help="Use only the first N bars of the seed (default: all of it "
                                                   "that fits)."),
    parts: Optional[str] = typer.Option(None, "--parts", help="Comma-separated parts to put in mix.wav "
                                        "(default all): kick snare hihat_closed hihat_open tom_low tom_mid "
                                        "tom_high crash ride."),
    drum_channel: Optional[int] = typer.Option(None, "--drum-channel", min=1, max=16,
                                               help="Take the seed's drums from this MIDI channel (1-16) "
                                                    "instead of channel 10 / is_drum tracks."),
    beats_per_bar: Optional[int] = typer.Option(None, "--beats-per-bar", min=1, max=16,
                                                help="Quarter notes per bar (default: from the seed's time "
                                                     "signature, else 4)."),
    model: Optional[Path] = typer.Option(None, "--model", help="Model folder or .safetensors file "
                                         "(default: the shipped model)."),
    soundfont: Optional[Path] = typer.Option(None, "--soundfont", help="SoundFont (.sf2) for the stems "
                                             "(default: TimGM6mb.sf2 shipped with pretty_midi)."),
    sample_rate: int = typer.Option(44100, "--sample-rate", min=lim.MIN_SAMPLE_RATE, max=lim.MAX_SAMPLE_RATE,
                                     help="Audio sample rate in Hz."),
    random_seed: int = typer.Option(0, "--random-seed", min=0, max=2**63 - 1,
                                     help="Pattern seed (0..2**63-1): same inputs + seed -> same MIDI."),
    groove_keep: float = typer.Option(0.5, "--groove-keep",
                                      help="0..1: how much each step follows the seed's own events at that "
                                           "position in the bar (0 = the bare model, which drifts off the groove "
                                           "within ~4 bars; 0.8+ = a tight loop; 0.3 = an evolving pattern)."),
    top_p: float = typer.Option(0.95, "--top-p", help="Nucleus sampling (0 < p <= 1): sample only from the "
                                "likeliest events holding this share of probability (1 = all)."),
    density_cap: float = typer.Option(1.5, "--density-cap",
                                      help="Per bar, snare/toms/crash hits <= this x the seed's busiest bar "
                                           "(at least 4; snare never 12+), and a seed with hats/ride in every bar "
                                           "keeps them; 0 = off (0..16). Beam search ignores --groove-keep, "
                                           "--top-p and --density-cap."),
    humanize: float = typer.Option(0.0, "--humanize",
                                   help="0..1: velocities and micro-timing from the groove model trained on the "
                                        "Groove MIDI Dataset (0 = the quantized pattern, 1 = full); MIDI, stems, "
                                        "mix.wav and onsets.json follow."),
):
    """Seed MIDI -> per-part drum patterns, stems and audio (`breakgan drums --seed x.mid --out DIR`)."""
    if ctx.invoked_subcommand is not None:
        return
    if seed is None and seed_pattern is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)
    if out is None:
        raise BreakganError("--out is required (the folder to write candidates to)")
    if seed is not None and seed_pattern is not None:
        raise BreakganError("give either --seed or --seed-pattern, not both")
    from breakgan.drums.run import run_drums
    from breakgan.parts import parse_parts

    mix_parts = parse_parts(parts)
    from breakgan.drums.generate import make_decoding

    decoding = make_decoding(groove_keep, top_p, density_cap)
    run_drums(seed, out, seed_pattern=seed_pattern, bars=bars, tempo=tempo, temperature=temperature,
              candidates=candidates, beam_size=beam_size, branch_factor=branch_factor,
              steps_per_iteration=steps_per_iteration, seed_bars=seed_bars, parts=mix_parts,
              drum_channel=drum_channel, beats_per_bar=beats_per_bar, model=model, soundfont=soundfont,
              sample_rate=sample_rate, random_seed=random_seed, decoding=decoding, humanize=humanize)


@app.command("groove", no_args_is_help=True)
def groove(
    pattern: Path = typer.Argument(..., help="Drum MIDI file (channel 10 or an is_drum track), quantized to "
                                   f"16ths as it is read; the seed's limits apply ({smf.MAX_MIDI_BYTES // 2**20} "
                                   "MB, ...)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (cand-01/ inside, like `breakgan drums`)."),
    amount: float = typer.Option(1.0, "--amount", help="0..1: 0 = the quantized pattern, 1 = the groove model's "
                                 "velocities and timing in full."),
    tempo: Optional[float] = typer.Option(None, "--tempo", help="Tempo in BPM (default: the file's)."),
    drum_channel: Optional[int] = typer.Option(None, "--drum-channel", min=1, max=16,
                                               help="Take the drums from this MIDI channel (1-16)."),
    parts: Optional[str] = typer.Option(None, "--parts", help="Comma-separated parts to put in mix.wav."),
    soundfont: Optional[Path] = typer.Option(None, "--soundfont", help="SoundFont (.sf2) for the stems."),
    sample_rate: int = typer.Option(44100, "--sample-rate", min=lim.MIN_SAMPLE_RATE, max=lim.MAX_SAMPLE_RATE,
                                     help="Audio sample rate in Hz."),
    random_seed: int = typer.Option(0, "--random-seed", min=0, max=2**63 - 1,
                                    help="Seed of the small random variation around the predictions."),
    groove_model: Optional[Path] = typer.Option(None, "--groove-model",
                                                help="Groove model .safetensors (default: the shipped one)."),
):
    """Humanize any drum MIDI: velocities and micro-timing from the groove model, as a drums folder."""
    from breakgan.drums.groove.run import run_groove
    from breakgan.parts import parse_parts

    mix_parts = parse_parts(parts)
    run_groove(pattern, out, amount=amount, tempo=tempo, drum_channel=drum_channel, parts=mix_parts,
               soundfont=soundfont, sample_rate=sample_rate, random_seed=random_seed, model=groove_model)


@app.command("transcribe", no_args_is_help=True)
def transcribe(
    song: Path = typer.Argument(..., help="Any audio or video file FFmpeg decodes (streamed; at most 6 hours)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (cand-01/ inside, like `breakgan drums`)."),
    model: Optional[Path] = typer.Option(None, "--model", help="Transcription model .safetensors (default: the "
                                         "shipped assets/drums/transcribe.safetensors)."),
    tempo: Optional[float] = typer.Option(None, "--tempo", help="The song's tempo in BPM, when you know it "
                                          "(default: estimated; very slow or fast songs can come out at double "
                                          "or half). Beats and bar lines follow it."),
):
    """Any song -> a drums folder: per-part onsets and velocities from the transcription model, tempo and
    bar lines, MIDI, and the song as the audio (`render --drums DIR`, `live --drums DIR`)."""
    from breakgan.transcribe.run import run_transcribe

    run_transcribe(song, out, model=model, tempo=tempo)


@app.command("train", no_args_is_help=True)
def train(
    midi_dirs: list[Path] = typer.Argument(..., help="Folders of MIDI files (searched recursively); a Groove "
                                           "MIDI Dataset info.csv in a folder gives its train/validation split."),
    out: Path = typer.Option(..., "--out", "-o", help="Model folder (checkpoints, logs, metrics)."),
    steps: int = typer.Option(20000, "--steps", min=1, max=lim.MAX_TRAIN_STEPS, help="Total optimiser steps."),
    batch_size: int = typer.Option(128, "--batch-size", min=1, max=lim.MAX_BATCH,
                                    help="Sequences per batch (Magenta: 128)."),
    learning_rate: float = typer.Option(1e-3, "--learning-rate", help="Adam learning rate."),
    clip_norm: float = typer.Option(3.0, "--clip-norm", help="Gradient clipping norm."),
    max_steps: int = typer.Option(512, "--max-steps", min=16, max=lim.MAX_SEQUENCE_STEPS,
                                  help="Split drum tracks into chunks of at most this many 16th steps."),
    min_bars: int = typer.Option(4, "--min-bars", min=1, max=lim.MAX_MIN_BARS,
                                 help="Drop drum tracks shorter than this many bars."),
    validation_fraction: float = typer.Option(0.1, "--validation-fraction", min=0.0, max=0.9,
                                              help="Validation share for folders without info.csv."),
    eval_every: int = typer.Option(200, "--eval-every", min=1, max=lim.MAX_TRAIN_STEPS,
                                   help="Validate every N steps."),
    save_every: int = typer.Option(100, "--save-every", min=1, max=lim.MAX_TRAIN_STEPS,
                                   help="Checkpoint every N steps."),
    minutes: float = typer.Option(0.0, "--minutes", min=0.0, max=lim.MAX_MINUTES,
                                  help="Stop after this many minutes of training (0 = no limit); the model is saved."),
    resume: bool = typer.Option(True, "--resume/--restart", help="Continue from the checkpoint in --out."),
    device: str = typer.Option("cpu", "--device", help="torch device: auto, cpu, cuda or cuda:N."),
    threads: int = typer.Option(0, "--threads", min=0, max=lim.MAX_THREADS,
                                help="CPU threads for torch (0 = default)."),
    layers: str = typer.Option("256,256,256", "--layers", help="LSTM layer sizes, comma-separated "
                               "(Magenta drum_kit: 256,256,256)."),
    dropout_keep: float = typer.Option(0.5, "--dropout-keep", min=0.05, max=1.0,
                                       help="Keep probability of LSTM outputs in training (1 = no dropout)."),
    random_seed: int = typer.Option(0, "--random-seed", min=0, max=2**63 - 1,
                                    help="Seed for initialisation, batch order, dropout (0..2**63-1)."),
):
    """Train DrumsRNN on MIDI folders (resumable; validation loss, perplexity and accuracy logged)."""
    from breakgan.drums.train import DrumsTrainOptions, train_drums

    opts = DrumsTrainOptions(layers=lim.parse_layers(layers), dropout_keep=dropout_keep, steps=steps,
                             batch_size=batch_size, learning_rate=learning_rate, clip_norm=clip_norm,
                             max_steps=max_steps, min_bars=min_bars, validation_fraction=validation_fraction,
                             eval_every=eval_every, save_every=save_every, minutes=minutes, seed=random_seed,
                             device=device, threads=threads)
    result = train_drums(midi_dirs, out, opts, resume=resume)
    v = result.get("validation") or {}
    if v:
        typer.echo(f"step {result['step']}: validation perplexity {v['perplexity']:.3f}, "
                   f"accuracy {v['accuracy']:.3f}")


@app.command("export", no_args_is_help=True)
def export(
    model_dir: Path = typer.Argument(..., help="Trained model folder (or .safetensors file)."),
    out_file: Path = typer.Argument(..., help="Output .safetensors file."),
    dtype: str = typer.Option("float16", "--dtype", help="Stored precision: float16 or float32."),
):
    """Write a trained model as one small .safetensors file (what assets/drums ships)."""
    if dtype not in ("float16", "float32", "bfloat16"):
        raise BreakganError(f"--dtype {dtype}: choose float16, bfloat16 or float32")
    from breakgan.drums.train import export_model

    typer.echo(export_model(model_dir, out_file, dtype))
