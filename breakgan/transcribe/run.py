"""`breakgan drums transcribe SONG --out DIR`: any song -> a drums folder (cand-01/) that `render --drums`
and `live --drums` read, with the song itself as the audio to mux."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

from breakgan.console import info, warn
from breakgan.errors import BreakganError
from breakgan.paths import need_file


def _song_name(song: Path) -> str:
    suffix = song.suffix.lower()
    return "song" + (suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else "")


def transcribe_song(song: Path, model_path: Path, audio: str | None, tempo: float | None = None
                    ) -> tuple[dict, dict, float]:
    """`song` -> (part -> (n, 2) [time s, velocity 1..127], the onsets.json structure naming `audio`,
    seconds spent): what `drums transcribe` writes and `render --audio` renders, built in one place.
    `tempo` (bpm, checked by the caller): the song's, when known; otherwise it is estimated."""
    from breakgan.transcribe.infer import transcribe_file
    from breakgan.transcribe.output import onsets_json, part_onsets
    from breakgan.transcribe.tempo import beat_grid

    t0 = time.perf_counter()
    result, _ = transcribe_file(song, model_path)
    seconds = time.perf_counter() - t0
    if result.duration <= 0:
        raise BreakganError(f"{song}: audio is empty")
    parts = part_onsets(result.onsets, result.tom_pitch)
    tempo, beats, bar_lines = beat_grid(result.envelope, result.onsets, tempo=tempo)
    data = onsets_json(parts, duration=result.duration, tempo=tempo, beats=beats, bar_lines=bar_lines, audio=audio)
    return parts, data, seconds


def run_transcribe(song, out, *, model=None, tempo=None) -> Path:
    """Transcribe `song` and write OUT/cand-01/{onsets.json, pattern.mid, parts/*.mid, song.EXT,
    breakgan.json} and OUT/breakgan.json through the output-folder rule. `tempo`: the song's BPM when the
    user knows it (the estimate can land at double or half on very slow or fast songs)."""
    from breakgan.drums.options import check_tempo
    from breakgan.parts import PARTS
    from breakgan.stage import make_record, output_dir, write_json_atomic, write_record
    from breakgan.transcribe.model import SHIPPED
    from breakgan.transcribe.output import midi_bytes

    song, out = Path(song), Path(out)
    given_tempo = None if tempo is None else check_tempo(tempo)
    need_file(song)
    model_path = Path(model) if model is not None else SHIPPED
    inputs = {"song": song, "transcribe_model": model_path}
    with output_dir(out, "drums", inputs=inputs.values()) as tmp:
        audio_name = _song_name(song)
        parts, data, seconds = transcribe_song(song, model_path, audio_name, given_tempo)
        duration, tempo = data["duration"], data["tempo"]
        cand = tmp / "cand-01"
        (cand / "parts").mkdir(parents=True)
        shutil.copyfile(song, cand / audio_name)
        write_json_atomic(cand / "onsets.json", data)
        (cand / "pattern.mid").write_bytes(midi_bytes(parts, tempo))
        for p in PARTS:
            (cand / "parts" / f"{p}.mid").write_bytes(midi_bytes(parts, tempo, only=(p,), name=p))
        counts = {p: len(parts[p]) for p in PARTS}
        stats = {"duration_s": round(duration, 3), "seconds": round(seconds, 2),
                 "realtime_factor": round(duration / max(seconds, 1e-9), 1)}
        write_record(cand, make_record("drums", {"candidate": 1}, {}, candidate=1, hits=counts, **stats))
        write_record(tmp, make_record("drums", {"model": os.fspath(model_path), "tempo": given_tempo}, inputs,
                                      candidates=["cand-01"],
                                      transcribed=True, tempo=tempo, beats_per_bar=4,
                                      bars=data.get("bars"), hits=counts, **stats))
    total = sum(counts.values())
    if total == 0:
        warn(f"{song}: no drum onsets found (silence, or no percussion the model knows)")
    tempo_text = f"{tempo:.1f} BPM" if tempo else "tempo unknown"
    info(f"wrote {out} ({total} onsets in {duration:.1f} s, {tempo_text}, "
         f"{stats['realtime_factor']:g}x real time)")
    return out
