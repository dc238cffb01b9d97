"""`breakgan ingest`: parse and check the options, then call `ingest_clips`."""

from pathlib import Path
from typing import List

import typer

from breakgan.errors import BreakganError
from breakgan.ingest.options import CROP_MODES, IngestOptions

_D = IngestOptions()


def ingest(
    clips: List[Path] = typer.Argument(..., help="Clips or folders of clips (any file FFmpeg reads as "
                                       "video, whatever its extension; folders are searched recursively)."),
    out: Path = typer.Option(..., "--out", "-o", help="Dataset folder. An existing dataset is extended: "
                             "new clips are added, clips already there with the same options are skipped."),
    size: int = typer.Option(_D.size, help="Output frame side in pixels (power of two)."),
    fps: float = typer.Option(_D.fps, help="Candidate frames sampled per second of footage."),
    crop: str = typer.Option(_D.crop, help="auto: remove letterbox bars, take the square that keeps the "
                             "dancer whole | dancer: follow the moving body | center: centred square "
                             "(bars removed) | none: whole frame padded to a square."),
    follow_seconds: float = typer.Option(_D.follow_s, help="--crop dancer: seconds per crop box."),
    min_sharpness: float = typer.Option(_D.min_sharpness, help="Drop frames less sharp than this share of "
                                        "the clip's sharp level (90th percentile of Laplacian variance)."),
    still_motion: float = typer.Option(_D.still_motion, help="Motion (optical flow, percent of frame "
                                       "width per second) below which a frame counts as still."),
    still_share: float = typer.Option(_D.still_share, help="Share of each still stretch that is kept."),
    still_min_frames: int = typer.Option(_D.still_min_frames, help="Still stretches shorter than this "
                                         "many samples are left alone."),
    dup_distance: int = typer.Option(_D.dup_distance, help="Perceptual-hash bit distance at or below "
                                     "which a frame is a near-duplicate of an earlier kept one (-1: off)."),
    max_frames: int = typer.Option(_D.max_frames, help="At most this many kept frames per clip, evenly "
                                   "spread (0: no limit)."),
    start: float = typer.Option(_D.start, help="Seconds skipped at the start of every clip."),
    duration: float = typer.Option(_D.duration, help="Seconds read per clip after --start (0: all)."),
    mirror: bool = typer.Option(_D.mirror, "--mirror/--no-mirror", help="Also add every kept frame "
                                "mirrored (doubles the set; asymmetric moves get learned both ways)."),
):
    """Turn dance clips into a clean, diverse training set: square frames, a manifest, packed arrays.

    Examples: `breakgan ingest clips/ --out datasets/me` ;
    `breakgan ingest new_take.mp4 --out datasets/me` (adds it; clips already in are skipped) ;
    `breakgan ingest wide.mp4 --out datasets/me --crop dancer --fps 8`.
    """
    if crop not in CROP_MODES:
        raise BreakganError(f"--crop {crop}: must be one of {', '.join(CROP_MODES)}")
    options = dict(size=size, fps=fps, crop=crop, follow_s=follow_seconds, min_sharpness=min_sharpness,
                   still_motion=still_motion, still_share=still_share, still_min_frames=still_min_frames,
                   dup_distance=dup_distance, max_frames=max_frames, start=start, duration=duration,
                   mirror=mirror)
    IngestOptions.from_kwargs(**options)  # validate before any work starts
    from breakgan.ingest.run import ingest_clips

    summary = ingest_clips(clips, out, **options)
    failed, total = len(summary.failed), len(summary.clips)
    if failed == total:
        raise BreakganError(f"no clip was ingested ({failed} failed); {out} is unchanged")
    if failed:
        raise BreakganError(f"{failed} of {total} clips failed; {out} holds {summary.count} frames from the others")
