"""Stage: ingest. Dance clips -> a clean, diverse training set (see dataset.py for the folder layout).

`ingest_clips(clips, out, **options)` is the Python entry (the CLI and the pipeline runner call it);
heavy imports (OpenCV, ImageHash) happen on first call so `breakgan --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path


def ingest_clips(clips: list[Path], out: Path, **options):
    """Ingest clips (files or folders) into dataset folder `out`; returns an IngestSummary.

    Options are IngestOptions fields (size, fps, crop, min_sharpness, still_motion, still_share,
    dup_distance, max_frames, start, duration, mirror, ...), plus report=False to skip the table.
    """
    from breakgan.ingest.run import ingest_clips as _ingest_clips

    return _ingest_clips(clips, out, **options)


__all__ = ["ingest_clips"]
