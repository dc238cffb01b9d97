"""The nine drum parts of Magenta's drum_kit model, in note-seq's class order.

Part names are what every option, file name and OSC address uses.
"""

from breakgan.errors import BreakganError

# Same order as note_seq.drums_encoder_decoder.DEFAULT_DRUM_TYPE_PITCHES (class index = position).
PARTS: tuple[str, ...] = (
    "kick",
    "snare",
    "hihat_closed",
    "hihat_open",
    "tom_low",
    "tom_mid",
    "tom_high",
    "crash",
    "ride",
)

# General MIDI pitch used when a part is written back to MIDI (note-seq decodes to the first pitch).
PART_PITCH: dict[str, int] = {
    "kick": 36,
    "snare": 38,
    "hihat_closed": 42,
    "hihat_open": 46,
    "tom_low": 45,
    "tom_mid": 48,
    "tom_high": 50,
    "crash": 49,
    "ride": 51,
}


def parse_parts(text: str | None, default: tuple[str, ...] = PARTS, *, option: str = "--parts") -> tuple[str, ...]:
    """Parse a comma-separated part list ('kick,snare' or 'all'), keeping the canonical order."""
    if text is None or text.strip() in ("", "all"):
        return tuple(default)
    wanted = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in wanted if p not in PARTS]
    if unknown:
        raise BreakganError(
            f"{option}: unknown drum part(s) {', '.join(unknown)}; choose from {' '.join(PARTS)}"
        )
    if not wanted:
        raise BreakganError(f"{option}: {text!r} names no drum part; give one or more of {' '.join(PARTS)}, or all")
    return tuple(p for p in PARTS if p in wanted)
