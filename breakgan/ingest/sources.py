"""Turn CLIP_OR_DIR arguments into clips: files are judged by what FFmpeg finds in them, not by name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from breakgan.errors import BreakganError
from breakgan.media import MediaInfo, probe

# Still-image codecs: FFmpeg reads a photo as a one-frame "video"; that is not footage.
IMAGE_CODECS = {"png", "mjpeg", "bmp", "tiff", "webp", "gif", "jpeg2000", "jpegls", "ppm", "pgm", "pam"}


@dataclass(frozen=True)
class Source:
    """One argument resolved: a usable clip (info set) or a problem (error set), never both."""

    path: Path
    info: MediaInfo | None = None
    error: str | None = None


def check_clip(path: Path) -> MediaInfo:
    """Probe `path` and make sure it holds footage; BreakganError naming the file otherwise."""
    info = probe(path)
    if not info.has_video:
        what = "audio only, no video stream" if info.has_audio else "no video stream"
        raise BreakganError(f"{path}: {what}")
    if info.codec in IMAGE_CODECS and info.duration < 0.5:
        raise BreakganError(f"{path}: a still image, not a video")
    if info.width < 16 or info.height < 16:
        raise BreakganError(f"{path}: video is only {info.width}x{info.height}")
    return info


def _folder_clips(folder: Path) -> list[Source]:
    files = sorted(p for p in folder.rglob("*")
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    found = []
    for f in files:
        try:
            found.append(Source(f, check_clip(f)))
        except BreakganError:
            continue  # inside a folder, anything that is not footage (notes, images, audio) is passed over
    if not found:
        return [Source(folder, error=f"{folder}: no video files in folder ({len(files)} other files)")]
    return found


def resolve_sources(args: list[Path]) -> list[Source]:
    """Each argument becomes one or more Sources; duplicates (same resolved path) are dropped."""
    out: list[Source] = []
    seen: set[Path] = set()
    for arg in args:
        arg = Path(arg)
        if not arg.exists():
            items = [Source(arg, error=f"{arg}: no such file or folder")]
        elif arg.is_dir():
            items = _folder_clips(arg)
        else:
            try:
                items = [Source(arg, check_clip(arg))]
            except BreakganError as e:
                items = [Source(arg, error=str(e))]
        for item in items:
            key = item.path.resolve()
            if key in seen:
                continue
            seen.add(key)
            out.append(item)
    return out
