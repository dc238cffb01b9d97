"""Training data: drum tracks extracted from MIDI files the way Magenta's drums pipeline does.

Per file: split at tempo / time-signature changes, quantise at 4 steps per quarter, extract drum
tracks with note-seq's `DrumTrack.from_quantized_sequence` (is_drum notes only; a track ends after
`gap_bars` empty bars), keep tracks of at least `min_bars`, and split long ones into chunks of at most
`max_steps` steps (Magenta truncates; splitting keeps the rest of a long performance). Pitches go
through note-seq's class mapping, so the Groove MIDI Dataset's Roland pitches (22, 26, 58, 59, ...)
land in their classes. The GMD's `info.csv` gives the train/validation split when present.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from breakgan.drums.encoding import STEPS_PER_QUARTER, labels_from_events
from breakgan.drums.smf import read_midi_bytes, scan_midi
from breakgan.errors import BreakganError

MIDI_SUFFIXES = (".mid", ".midi")


@dataclass
class Corpus:
    train: list[np.ndarray] = field(default_factory=list)  # label sequences
    validation: list[np.ndarray] = field(default_factory=list)
    files: dict[str, int] = field(default_factory=dict)  # counts: train / validation / skipped / test
    problems: list[str] = field(default_factory=list)


def drum_tracks(sequence, min_bars: int = 4, max_steps: int = 512, gap_bars: float = 1.0) -> list[np.ndarray]:
    """Label sequences of the drum tracks in one NoteSequence (Magenta's extraction loop)."""
    from note_seq import drums_lib, sequences_lib

    out = []
    for part in sequences_lib.split_note_sequence_on_time_changes(sequence):
        if not any(n.is_drum for n in part.notes):
            continue
        q = sequences_lib.quantize_note_sequence(part, STEPS_PER_QUARTER)
        start = 0
        while True:
            track = drums_lib.DrumTrack()
            track.from_quantized_sequence(q, search_start_step=start, gap_bars=gap_bars, pad_end=True)
            if not track:
                break
            spb = track.steps_per_bar
            start = track.end_step + (start - track.end_step) % spb
            if len(track) < spb * min_bars:
                continue
            labels = labels_from_events(track)
            chunk = max(spb, max_steps - max_steps % spb)
            for i in range(0, len(labels), chunk):
                piece = labels[i:i + chunk]
                if len(piece) >= min(spb * min_bars, chunk):
                    out.append(piece)
    return out


def midi_files(dirs: list[Path]) -> list[tuple[Path, Path]]:
    """(root, file) pairs of every MIDI file under the given folders (or files), sorted."""
    found = []
    for d in dirs:
        d = Path(d)
        if d.is_file():
            found.append((d.parent, d))
        elif d.is_dir():
            found += [(d, f) for f in sorted(d.rglob("*")) if f.suffix.lower() in MIDI_SUFFIXES]
        else:
            raise BreakganError(f"{d}: no such folder")
    return found


def gmd_splits(root: Path) -> dict[str, str]:
    """midi_filename -> split from a Groove MIDI Dataset info.csv in `root` (empty when absent)."""
    info = root / "info.csv"
    if not info.is_file():
        return {}
    try:
        with open(info, newline="") as f:
            return {row["midi_filename"]: row["split"] for row in csv.DictReader(f)}
    except (OSError, KeyError, csv.Error) as e:
        raise BreakganError(f"{info}: not a Groove MIDI Dataset info.csv ({e})") from None


def hashed_split(name: str, validation_fraction: float) -> str:
    """Stable split for folders without info.csv: by a hash of the relative path."""
    h = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "validation" if h < validation_fraction else "train"


def load_corpus(dirs: list[Path], *, min_bars: int = 4, max_steps: int = 512, gap_bars: float = 1.0,
                validation_fraction: float = 0.1, on_file=None) -> Corpus:
    from note_seq import midi_io

    corpus = Corpus(files={"train": 0, "validation": 0, "skipped": 0, "test": 0})
    files = midi_files(dirs)
    if not files:
        raise BreakganError(f"{', '.join(map(str, dirs))}: no MIDI files found")
    splits: dict[Path, dict[str, str]] = {}
    for root, f in files:
        if root not in splits:
            splits[root] = gmd_splits(root)
        rel = f.relative_to(root).as_posix()
        split = splits[root].get(rel) if splits[root] else hashed_split(rel, validation_fraction)
        if on_file:
            on_file(f)
        if split is None or split == "test":
            corpus.files["test" if split == "test" else "skipped"] += 1
            continue
        try:
            data = read_midi_bytes(f)
            scan_midi(data, str(f))  # the seed's limits: an oversized or broken file is skipped cheaply
            seq = midi_io.midi_to_note_sequence(data)
            tracks = drum_tracks(seq, min_bars=min_bars, max_steps=max_steps, gap_bars=gap_bars)
        except BreakganError as e:
            corpus.files["skipped"] += 1
            corpus.problems.append(str(e))
            continue
        except Exception as e:  # corrupt or unsupported files are reported, not fatal
            corpus.files["skipped"] += 1
            corpus.problems.append(f"{f}: {type(e).__name__}: {e}")
            continue
        if not tracks:
            corpus.files["skipped"] += 1
            continue
        key = "validation" if split == "validation" else "train"
        corpus.files[key] += 1
        getattr(corpus, key).extend(tracks)
    return corpus


def baseline_perplexities(train: list[np.ndarray], validation: list[np.ndarray],
                          num_classes: int = 512) -> dict[str, float]:
    """Validation perplexity of add-one unigram and unigram-backed-off bigram models over events.

    Targets are what the RNN predicts: every event after the first of each sequence.
    """
    uni = np.ones(num_classes)
    big = np.zeros((num_classes, num_classes))
    for s in train:
        np.add.at(uni, s[1:], 1)
        np.add.at(big, (s[:-1], s[1:]), 1)
    p_uni = uni / uni.sum()
    k = 1.0  # backoff weight: bigram counts plus one pseudo-count spread by the unigram
    p_big = (big + k * p_uni[None]) / (big.sum(1, keepdims=True) + k)
    nll_u = nll_b = 0.0
    n = 0
    for s in validation:
        nll_u -= np.log(p_uni[s[1:]]).sum()
        nll_b -= np.log(p_big[s[:-1], s[1:]]).sum()
        n += len(s) - 1
    n = max(n, 1)
    return {"unigram": float(np.exp(nll_u / n)), "bigram": float(np.exp(nll_b / n))}


def corpus_fingerprint(dirs: list[Path]) -> str:
    return hashlib.sha256("\n".join(sorted(os.fspath(Path(d).resolve()) for d in dirs)).encode()).hexdigest()[:16]
