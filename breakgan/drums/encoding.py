"""Magenta's drum_kit encoding, taken from note-seq rather than re-derived.

A drum pattern here is a (steps, 9) uint8 array of velocities (0 = no hit) in `PARTS` order, which is
note-seq's DEFAULT_DRUM_TYPE_PITCHES class order. One step's event is the set of parts hit; note-seq's
`MultiDrumOneHotEncoding` turns it into one of 512 classes (bit i = part i) and
`LookbackEventSequenceEncoderDecoder(lookback_distances=[], binary_counter_bits=6)` adds 6 binary
counter inputs (±1, least significant first, counting position + 1): 518 inputs, 512 labels.
The model input is built here in vectorised form; tests check it equals note-seq's `events_to_input`.
"""

from __future__ import annotations

import functools

import numpy as np

from breakgan.parts import PARTS

STEPS_PER_QUARTER = 4
NUM_PARTS = len(PARTS)
NUM_CLASSES = 2 ** NUM_PARTS  # 512
COUNTER_BITS = 6
INPUT_SIZE = NUM_CLASSES + COUNTER_BITS  # 518
NO_EVENT = 0  # the empty set: no drum hit at this step


@functools.lru_cache(maxsize=1)
def encoder_decoder():
    """note-seq's drum_kit encoder-decoder (the exact object Magenta's drum_kit config builds)."""
    from note_seq import drums_encoder_decoder, encoder_decoder as ed

    return ed.LookbackEventSequenceEncoderDecoder(
        drums_encoder_decoder.MultiDrumOneHotEncoding(), lookback_distances=[], binary_counter_bits=6
    )


@functools.lru_cache(maxsize=1)
def pitch_to_part() -> np.ndarray:
    """(128,) int array: part index of each MIDI pitch, -1 for pitches note-seq ignores."""
    one_hot = encoder_decoder()._one_hot_encoding  # the MultiDrumOneHotEncoding inside
    table = np.full(128, -1, dtype=np.int64)
    for pitch in range(128):
        index = one_hot.encode_event(frozenset([pitch]))
        if index:
            table[pitch] = int(index).bit_length() - 1
    return table


@functools.lru_cache(maxsize=1)
def part_pitches() -> tuple[int, ...]:
    """The pitch note-seq decodes each part to (the first pitch of each class)."""
    one_hot = encoder_decoder()._one_hot_encoding
    return tuple(next(iter(one_hot.decode_event(1 << i))) for i in range(NUM_PARTS))


def labels_from_pattern(pattern: np.ndarray) -> np.ndarray:
    """(steps, 9) velocities -> (steps,) int64 class labels (bitmask of the parts hit)."""
    hits = (np.asarray(pattern) > 0).astype(np.int64)
    return hits @ (1 << np.arange(NUM_PARTS, dtype=np.int64))


def hits_from_labels(labels: np.ndarray) -> np.ndarray:
    """(steps,) class labels -> (steps, 9) bool hits."""
    labels = np.asarray(labels, dtype=np.int64)
    return ((labels[:, None] >> np.arange(NUM_PARTS)) & 1).astype(bool)


def labels_from_events(events) -> np.ndarray:
    """note-seq drum events (frozensets of pitches, e.g. a DrumTrack) -> class labels, via note-seq."""
    enc = encoder_decoder()
    events = list(events)
    return np.fromiter((enc.events_to_label(events, i) for i in range(len(events))),
                       dtype=np.int64, count=len(events))


def counter_bits(positions: np.ndarray) -> np.ndarray:
    """(n,) step positions -> (n, 6) float32 binary counter of position + 1 (±1, LSB first)."""
    n = np.asarray(positions, dtype=np.int64)[:, None] + 1
    bits = (n >> np.arange(COUNTER_BITS)) & 1
    return np.where(bits == 1, 1.0, -1.0).astype(np.float32)


def model_inputs(labels: np.ndarray) -> np.ndarray:
    """(n,) labels -> (n, 518) float32 inputs, identical to note-seq's events_to_input per position."""
    labels = np.asarray(labels, dtype=np.int64)
    out = np.zeros((len(labels), INPUT_SIZE), dtype=np.float32)
    out[np.arange(len(labels)), labels] = 1.0
    out[:, NUM_CLASSES:] = counter_bits(np.arange(len(labels)))
    return out
