"""`render_video`: timeline + keyframes + generator (+ footage) -> OUT/render.mp4 and OUT/breakgan.json.

Generation runs in a producer thread (frames.py); this thread composites each frame and pipes it
into FFmpeg, which encodes in its own process, and a second FFmpeg decodes the footage: the three
overlap, and memory stays flat in the video's length.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

import numpy as np

from breakgan.console import info, progress, warn
from breakgan.errors import BreakganError
from breakgan.media import probe
from breakgan.paths import need_file
from breakgan.parts import PARTS
from breakgan.render.keys import part_keys, read_favourites
from breakgan.render.layout import FOOTAGE, compose, cover_filters, make_layout
from breakgan.render.options import check_batch, check_footage_start, check_fps, check_keys, check_size
from breakgan.seeds import check_seed
from breakgan.stage import check_out, make_record, output_dir, write_record
from breakgan.timeline import (Timeline, envelope, frame_count, frame_times, timeline_from_drums,
                               timeline_from_onsets)
from breakgan.trajectory import Motion

VIDEO_NAME = "render.mp4"
PREVIEW_LONG_SIDE = 320  # pixels
PREVIEW_MAX_FPS = 15.0


def preview_settings(size: tuple[int, int], fps: float) -> tuple[tuple[int, int], float]:
    """Low-res, low-fps settings for --preview: longest side PREVIEW_LONG_SIDE px, at most 15 fps."""
    w, h = size
    scale = min(1.0, PREVIEW_LONG_SIDE / max(w, h))
    even = lambda v: max(16, int(round(v * scale / 2)) * 2)  # noqa: E731
    return (even(w), even(h)), min(fps, PREVIEW_MAX_FPS)


def _blend_alpha(spec: str | None, timeline: Timeline, main: str, times: np.ndarray, motion: Motion) -> np.ndarray:
    """Per-frame weight of the generated stream in the blend layout: a part's envelope or const:X."""
    if spec and spec.startswith("const:"):
        try:
            value = float(spec.split(":", 1)[1])
        except ValueError:
            raise BreakganError(f"--blend-envelope {spec}: expected const:NUMBER in 0..1") from None
        if not 0.0 <= value <= 1.0:
            raise BreakganError(f"--blend-envelope {spec}: constant must be in 0..1")
        return np.full(len(times), value)
    part = spec or "crash"
    if part not in PARTS:
        raise BreakganError(f"--blend-envelope must be a part ({' '.join(PARTS)}) or const:X, got {spec!r}")
    if not len(timeline.onsets(part)):
        if spec:
            warn(f"--blend-envelope {part}: that part never plays; only the footage will show")
        else:  # the default (crash) is absent: follow the blended part's own hits
            part = main
    return envelope(timeline.onsets(part), times, motion.attack_ms / 1000.0, motion.release_ms / 1000.0)


def _load_generator(generator, latent_size: int | None, device) -> tuple[Callable, dict]:
    if isinstance(generator, (str, Path)):
        from breakgan.gan import load_generator

        return load_generator(generator, device=str(device))
    if isinstance(generator, tuple) and len(generator) == 2:
        return generator
    if callable(generator):
        if not latent_size:
            raise BreakganError("a generator callable needs latent_size")
        return generator, {"latent_size": int(latent_size), "num_classes": 0, "labels": []}
    raise BreakganError(f"generator must be a run folder, checkpoint or callable, got {type(generator).__name__}")


def _timeline(drums, audio, candidate, model: Path | None) -> tuple[Timeline, Path | None]:
    if (drums is None) == (audio is None):
        raise BreakganError("give exactly one of --drums DRUMS_DIR or --audio SONG")
    if drums is not None:
        tl = timeline_from_drums(drums, candidate, playable=True)
        sound = tl.audio
        if sound is not None and not Path(sound).is_file():
            sound = None  # render_video warns, once the timeline is known to be usable
        elif sound is not None and not probe(sound).has_audio:  # before the frames, not after them all
            raise BreakganError(f"{sound}: the drum mix holds no audio stream")
        return tl, sound
    return _transcribed(Path(audio), model), Path(audio)


def _transcribed(song: Path, model: Path) -> Timeline:
    """The song through the shipped drum-transcription model: the Timeline `render --drums` reads from
    what `drums transcribe SONG` writes, built in memory, with the song itself as the audio."""
    from dataclasses import replace

    from breakgan.transcribe.run import transcribe_song

    need_file(song)
    _, data, seconds = transcribe_song(song, model, os.fspath(song))
    tl = timeline_from_onsets(data, where=str(song))
    if not tl.active_parts:
        # `drums transcribe` keeps an empty folder (it can be edited); a video where nothing moves is no use
        raise BreakganError(f"{song}: no drum onsets found (silence, or no percussion the model knows); "
                            f"nothing would move")
    return replace(tl, source={**tl.source, "transcribe_seconds": round(seconds, 2)})


def _shipped_model() -> Path:
    from breakgan.transcribe.model import SHIPPED  # imports torch: only when a song is transcribed

    return SHIPPED


def _select_parts(timeline: Timeline, parts, layout: str, part: str | None) -> tuple[str, ...]:
    if layout in ("solo", "blend"):
        chosen = part or (tuple(parts) if parts else timeline.active_parts or ("kick",))[0]
        if chosen not in PARTS:
            raise BreakganError(f"--part must be one of {' '.join(PARTS)}, got {chosen!r}")
        selected = (chosen,)
    else:
        selected = tuple(parts) if parts else timeline.active_parts
    if not selected:  # empty timelines are refused where they are read; kept for callers of the library
        raise BreakganError(f"{timeline.source.get('onsets', 'the timeline')}: no onsets in any part: nothing would move")
    silent = [p for p in selected if not len(timeline.onsets(p))]
    if silent:
        warn(f"part(s) {', '.join(silent)} have no onsets: their tiles stay still")
    return selected


def render_video(
    out: str | Path,
    generator,
    drums: str | Path | None = None,
    audio: str | Path | None = None,
    footage: str | Path | None = None,
    *,
    latent_size: int | None = None,
    layout: str = "tiles",
    part: str | None = None,
    parts: tuple[str, ...] | None = None,
    size: tuple[int, int] = (1280, 720),
    fps: float = 30.0,
    seeds: dict[str, list[int]] | None = None,
    keyframe_seed: int = 0,
    favourites: str | Path | None = None,
    keys_per_part: int = 8,
    motion: Motion = Motion(),
    blend_envelope: str | None = None,
    classes: dict[str, int] | None = None,
    batch: int = 16,
    preview: bool = False,
    device: str = "auto",
    candidate: int | None = None,
    footage_start: float = 0.0,
    show_progress: bool = True,
) -> Path:
    """Render OUT/render.mp4 (+ OUT/breakgan.json), atomically; returns the MP4's path.

    generator: run folder / checkpoint / exported generator path, a (G, info) pair, or a callable
    G(z) -> (B, 3, R, R) in [-1, 1] with `latent_size`. drums: a drums folder (onsets.json, mix.wav);
    audio: any song (onsets by the shipped drum-transcription model, as `drums transcribe`). size (w, h)
    pixels and fps are independent of G's resolution.
    seeds: keyframe seeds per part; keyframe_seed: the base seed of the other parts' keyframes;
    motion.seed: the motion seed (pulse and drift). Limits: render.options.
    """
    from breakgan.device import resolve_device
    from breakgan.render.frames import GeneratedFrames, PartStream

    out = Path(out)
    if out.suffix.lower() in (".mp4", ".mov", ".mkv"):
        raise BreakganError(f"{out}: --out names a folder (render.mp4 and breakgan.json go inside)")
    size, fps = check_size(size), check_fps(fps)
    keys_per_part, batch = check_keys(keys_per_part), check_batch(batch)
    keyframe_seed = check_seed(keyframe_seed, "--keyframe-seed")
    footage_start = check_footage_start(footage_start)
    if not isinstance(motion, Motion):
        raise BreakganError(f"motion must be a trajectory.Motion, got {type(motion).__name__}")
    if preview:
        size, fps = preview_settings(size, fps)
    width, height = size

    # --out is checked again when written; checked now so a refusal comes before any warning or work
    model = _shipped_model() if audio is not None else None
    paths = [p for p in (generator, drums, audio, model, footage) if isinstance(p, (str, os.PathLike))]
    check_out(out, "render", inputs=paths)
    timeline, sound = _timeline(drums, audio, candidate, model)
    selected = _select_parts(timeline, parts, layout, part)
    if drums is not None and timeline.audio is not None and sound is None:
        warn(f"{timeline.audio}: drum mix not found; rendering without audio")
    foot_info = None
    if footage is not None:
        foot_info = probe(footage)
        if not foot_info.has_video:
            raise BreakganError(f"{footage}: has no video stream to use as footage")
    elif layout == "blend":
        raise BreakganError("--layout blend mixes generated frames over footage: give --footage")
    lay = make_layout(layout, selected, width, height, footage=foot_info is not None and layout != "solo",
                      part=part or selected[0])
    if footage is not None and layout == "solo":
        warn("--layout solo shows one part only; the footage is not used")

    dev = resolve_device(device)
    G, ginfo = _load_generator(generator, latent_size, dev)
    D = int(ginfo["latent_size"])
    if hasattr(G, "to") and dev.type == "cuda":
        import torch

        G = G.to(dev, memory_format=torch.channels_last)
    fav = read_favourites(favourites, D) if favourites else None
    keys = part_keys(lay.parts, D, keys_per_part, seeds=seeds, keyframe_seed=keyframe_seed, favourites=fav)
    n_classes = int(ginfo.get("num_classes") or 0)
    labels = {}
    if n_classes:
        classes = classes or {}
        for p in lay.parts:
            labels[p] = int(classes.get(p, PARTS.index(p) % n_classes))
            if not 0 <= labels[p] < n_classes:
                raise BreakganError(f"--classes {p}={labels[p]}: the generator has {n_classes} classes")

    count = frame_count(timeline.duration, fps)
    times = frame_times(count, fps)
    streams = [PartStream(p, timeline.onsets(p), keys[p], (lay.tile(p).w, lay.tile(p).h), labels.get(p))
               for p in lay.parts]
    alpha = (_blend_alpha(blend_envelope, timeline, lay.tiles[1].name, times, motion)
             if lay.kind == "blend" else None)

    options = {
        "layout": layout, "part": part, "parts": list(lay.parts), "size": f"{width}x{height}", "fps": fps,
        "seeds": seeds or {}, "keyframe_seed": keyframe_seed, "motion_seed": motion.seed, "favourites": favourites,
        "keys_per_part": keys_per_part, "motion": vars(motion), "blend_envelope": blend_envelope,
        "classes": labels, "batch": batch, "preview": preview, "candidate": candidate,
        "footage_start": footage_start,
    }
    inputs = {}
    if ginfo.get("path"):
        inputs["generator"] = ginfo["path"]
    if drums is not None:
        inputs["drums"] = Path(timeline.source.get("onsets", Path(drums) / "onsets.json")).parent
    transcription = None
    if audio is not None:
        inputs["audio"] = audio
        inputs["transcribe_model"] = model
        transcription = {"seconds": timeline.source.get("transcribe_seconds"),
                         "hits": {p: len(timeline.onsets(p)) for p in PARTS}}
    if footage is not None:
        inputs["footage"] = footage

    gen = GeneratedFrames(G, streams, times, motion, batch=batch, device=dev)
    started = time.perf_counter()
    with output_dir(out, "render", inputs=inputs.values()) as tmp:
        mp4 = tmp / VIDEO_NAME
        _encode(mp4, lay, gen, count, fps, sound, alpha, footage, footage_start, show_progress,
                preset="ultrafast" if preview else "veryfast")
        elapsed = time.perf_counter() - started
        record = make_record(
            "render", options, inputs,
            output=VIDEO_NAME, frames=count, duration=count / fps, onset_duration=timeline.duration,
            tempo=timeline.tempo, audio=str(sound) if sound else None, transcription=transcription,
            generator={**{k: ginfo.get(k) for k in ("latent_size", "num_classes", "kimg", "path")},
                       "resolution": ginfo.get("resolution") or gen.resolution},
            keyframes={p: keys[p].shape[0] for p in lay.parts},
            timing={"seconds": round(elapsed, 3), "fps": round(count / max(elapsed, 1e-9), 2),
                    "generator_seconds": round(gen.forward_s, 3)},
        )
        write_record(tmp, record)
    final = out / VIDEO_NAME
    info(f"wrote {final} ({count} frames, {width}x{height} @ {fps:g} fps, "
         f"{count / max(elapsed, 1e-9):.1f} frames/s)")
    return final


def _footage_frames(footage, tile, fps: float, start: float):
    from breakgan.media import read_frames

    return read_frames(footage, tile.w, tile.h, filters=cover_filters(tile.w, tile.h), fps=fps,
                       start=start or None, loop=True)


def _encode(mp4: Path, lay, gen, count: int, fps: float, sound, alpha, footage, footage_start: float,
            show_progress: bool, preset: str) -> None:
    from rich.progress import TextColumn

    from breakgan.media import VideoWriter

    foot_iter = _footage_frames(footage, lay.tile(FOOTAGE), fps, footage_start) if lay.has_footage else None
    canvas = np.zeros((lay.height, lay.width, 3), np.uint8)
    last_foot = None
    written = 0
    t0 = time.perf_counter()
    bar = progress(TextColumn("{task.fields[fps]} fps")) if show_progress else None
    try:
        with VideoWriter(mp4, lay.width, lay.height, fps, audio=sound, preset=preset) as writer:
            if bar is not None:
                bar.start()
                task = bar.add_task("render", total=count, fps="-")
            for images in gen:
                if written >= count:
                    break
                if foot_iter is not None:
                    frame = next(foot_iter, None)
                    if frame is None:  # unreadable tail: hold the last good frame
                        if last_foot is None:
                            raise BreakganError(f"{footage}: FFmpeg returned no frames")
                        frame = last_foot
                    last_foot = frame
                    images[FOOTAGE] = frame
                compose(lay, images, 1.0 if alpha is None else alpha[written], out=canvas)
                writer.write(canvas)
                written += 1
                if bar is not None and (written % 8 == 0 or written == count):
                    rate = written / max(time.perf_counter() - t0, 1e-9)
                    bar.update(task, completed=written, fps=f"{rate:.1f}")
            if written != count:
                raise RuntimeError(f"generated {written} frames, expected {count}")
    finally:
        gen.close()
        if foot_iter is not None:
            foot_iter.close()
        if bar is not None:
            bar.stop()
