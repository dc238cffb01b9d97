"""Stage: drums. DrumsRNN (Magenta drum_kit) in PyTorch: seed MIDI -> per-part patterns, stems, audio.

Public API: `run_drums(seed_midi, out, **options)` (what `breakgan drums` calls) and
`generate_onsets(...)` (one pattern as the onsets.json dict, no files; used by `breakgan live`).
"""

from __future__ import annotations


def generate_onsets(seed_midi=None, **kwargs) -> dict:
    from breakgan.drums.run import generate_onsets as _generate_onsets

    return _generate_onsets(seed_midi, **kwargs)


def run_drums(seed_midi, out, **kwargs):
    from breakgan.drums.run import run_drums as _run_drums

    return _run_drums(seed_midi, out, **kwargs)


__all__ = ["generate_onsets", "run_drums"]
