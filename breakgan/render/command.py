"""`breakgan render`: parse and validate the options, then call `render_video`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from breakgan.errors import BreakganError


def render(
    run: Path = typer.Option(..., "--run", help="GAN run folder (latest checkpoint), checkpoint file or "
                             "exported generator (.safetensors)."),
    out: Path = typer.Option(..., "--out", help="Output folder, e.g. renders/NAME: gets render.mp4 and "
                             "breakgan.json (written atomically)."),
    drums: Optional[Path] = typer.Option(None, "--drums", help="`breakgan drums` output folder (its cand-01) or "
                                         "one candidate folder: onsets.json drives the video, mix.wav is the audio."),
    audio: Optional[Path] = typer.Option(None, "--audio", help="Any song or video instead of --drums: its drums are "
                                         "transcribed by the shipped model (per-part onsets with velocities and tempo, "
                                         "as `breakgan drums transcribe SONG` writes); the song is the audio."),
    footage: Optional[Path] = typer.Option(None, "--footage", help="Dance clip shown beside/under the generated "
                                           "frames; aligned with the audio, looped when shorter, trimmed when longer."),
    layout: str = typer.Option("tiles", "--layout", help="tiles (grid, one tile per part + footage), blend "
                               "(generated over footage), pip (insets over footage), solo (one part)."),
    part: Optional[str] = typer.Option(None, "--part", help="The part shown by solo/blend (default: first part)."),
    parts: Optional[str] = typer.Option(None, "--parts", help="Parts to render, e.g. kick,snare,hihat_closed "
                                        "(default: every part that plays)."),
    size: str = typer.Option("1280x720", "--size", help="Output size WxH in pixels, each side even and 16..4096, "
                             "independent of the generator's resolution."),
    fps: float = typer.Option(30.0, "--fps", help="Output frames per second (1..240)."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Keyframe seeds per part, e.g. kick=3,snare=7:8:9 "
                                        "(one seed S = cycle S..S+keys-1; seed S is the latent of `breakgan sample "
                                        "--seeds S`; 0 <= S < 2**63)."),
    keyframe_seed: Optional[int] = typer.Option(None, "--keyframe-seed", help="Keyframe seed N of the parts without "
                                                "--seeds or favourites: part i (kick=0, snare=1, ...) cycles through "
                                                "seeds N+i*keys onwards, as `breakgan live --seed N`. Default 0."),
    motion_seed: Optional[int] = typer.Option(None, "--motion-seed", help="Motion seed: the directions of --pulse "
                                              "and --drift. Default 0."),
    random_seed: Optional[int] = typer.Option(None, "--random-seed", help="Old name: sets both --keyframe-seed "
                                              "and --motion-seed."),
    favourites: Optional[Path] = typer.Option(None, "--favourites", help="Keyframes file: seeds (text or JSON list, "
                                              "or JSON {part: \\[seeds]}) or latents (.npy, K x latent_size)."),
    keys: int = typer.Option(8, "--keys", help="Keyframes per part for random or single-seed cycles (1..1024)."),
    attack_ms: float = typer.Option(60.0, "--attack-ms", min=0, help="Time for a hit to move its part most of "
                                    "the way to the next keyframe (ms)."),
    release_ms: float = typer.Option(400.0, "--release-ms", min=0, help="Settle time after the attack (ms); also "
                                     "the decay of the blend envelope."),
    step: float = typer.Option(1.0, "--step", help="Keyframes advanced per hit at full velocity."),
    pulse: float = typer.Option(0.0, "--pulse", min=0, help="Size of a short push on each hit (fraction of the "
                                "latent norm; try 0.3)."),
    pulse_ms: float = typer.Option(150.0, "--pulse-ms", min=0, help="Decay time of the pulse (ms)."),
    drift: float = typer.Option(0.0, "--drift", min=0, help="Size of a slow walk between hits (fraction of the "
                                "latent norm; try 0.2)."),
    drift_period: float = typer.Option(8.0, "--drift-period", min=0.01, help="Period of the slowest drift (s)."),
    blend_envelope: Optional[str] = typer.Option(None, "--blend-envelope", help="What drives the blend crossfade: "
                                                 "a part (crash, hihat_open, ...) or const:0.5. Default crash, else the "
                                                 "blended part."),
    classes: Optional[str] = typer.Option(None, "--classes", help="Conditional generators: class per part, e.g. "
                                          "kick=0,snare=dancer2 (default: part index modulo the class count)."),
    candidate: Optional[int] = typer.Option(None, "--candidate", min=1, help="Drums candidate number (default 1)."),
    footage_start: float = typer.Option(0.0, "--footage-start", min=0, help="Start the footage at this time (s)."),
    batch: int = typer.Option(16, "--batch", help="Latents per generator forward pass (1..1024)."),
    preview: bool = typer.Option(False, "--preview", help="Quick low-res draft: longest side 320 px, at most 15 fps."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when available), cpu or cuda."),
):
    """Render a beat-synced video: each drum part morphs its own GAN stream on its hits, with footage."""
    from breakgan.device import check_device_name
    from breakgan.parts import PARTS, parse_parts
    from breakgan.render.keys import parse_seed_spec
    from breakgan.render.layout import LAYOUTS
    from breakgan.render.options import parse_size
    from breakgan.render.video import render_video
    from breakgan.seeds import check_seed
    from breakgan.trajectory import Motion

    if layout not in LAYOUTS:
        raise BreakganError(f"--layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if part is not None and part not in PARTS:
        raise BreakganError(f"--part must be one of {' '.join(PARTS)}, got {part!r}")
    check_device_name(device)
    if not run.exists():
        raise BreakganError(f"{run}: no such run folder or checkpoint")
    if random_seed is not None:
        random_seed = check_seed(random_seed, "--random-seed")
    keyframe_seed = check_seed(_first(keyframe_seed, random_seed, 0), "--keyframe-seed")
    motion_seed = check_seed(_first(motion_seed, random_seed, 0), "--motion-seed")
    size_wh = parse_size(size)
    seed_map = parse_seed_spec(seeds)
    class_map = None
    if classes:
        from breakgan.render.keys import parse_class_spec

        class_map = parse_class_spec(classes, _labels_of(run))
    motion = Motion(attack_ms=attack_ms, release_ms=release_ms, step=step, pulse=pulse, pulse_ms=pulse_ms,
                    drift=drift, drift_period_s=drift_period, seed=motion_seed)
    render_video(
        out, run, drums=drums, audio=audio, footage=footage, layout=layout, part=part,
        parts=parse_parts(parts) if parts else None, size=size_wh, fps=fps,
        seeds=seed_map, keyframe_seed=keyframe_seed, favourites=favourites, keys_per_part=keys,
        motion=motion, blend_envelope=blend_envelope, classes=class_map, batch=batch, preview=preview,
        device=device, candidate=candidate, footage_start=footage_start,
    )


def _first(*values):
    return next(v for v in values if v is not None)


def _labels_of(run: Path) -> list[str]:
    """Class labels of a generator, for --classes given by name (loads it once on the CPU)."""
    from breakgan.gan import load_generator

    return list(load_generator(run, device="cpu")[1].get("labels", []))
