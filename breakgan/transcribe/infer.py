"""Streaming transcription: audio blocks -> per-part onsets with velocities, plus a tempo envelope.

Memory stays flat whatever the length: features are computed per block, the network runs on windows
of WINDOW frames with MARGIN frames of context either side (more than its receptive field, so the
result is that of one pass over the whole signal), and peaks are picked as soon as their +-RADIUS
neighbourhood is known; a head with a rescorer (rescore.py) keeps its peaks as candidates until
rescore.AFTER frames of activations follow them, then lets the rescorer decide. Only the onsets found,
one pitch per tom hit (measured while its frames are still buffered) and a tempo envelope of 4 bytes per
10 ms frame are kept.

A model whose metadata says `"phases": 2` also runs on the frames of a second phase, centred half a hop
earlier, and its outputs are averaged with the first's (`combine_phases`): the frame grid no longer decides
how a hit between two frames looks to the network (on the development set, the sum of the seven heads'
F rose by 0.02 with an accompaniment and 0.12 without; see the model card).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from breakgan.errors import BreakganError
from breakgan.transcribe import features as F
from breakgan.transcribe import rescore
from breakgan.transcribe.model import HEADS
from breakgan.transcribe.peaks import PITCH_BEFORE, PITCH_FRAMES, RADIUS, hit_pitch, not_kick_doubles, peak_frames

WINDOW = 3000   # frames per network call (30 s: the margins cost 13%)
MARGIN = 200    # frames of context either side (2 s; more than the network's receptive field)
MAX_DURATION_S = 6 * 3600.0   # the longest song transcribed (the onsets.json limit)
# The tempo envelope: kick and snare probability, plus half the hi-hats' and ride's (weights and the beat
# tracker's start tempo chosen on 30 train-split grooves: 21/30 within 4%, against 17/30 for an equal sum).
TEMPO_WEIGHTS = np.array([1.0, 1.0, 0.5, 0.5, 0.0, 0.0, 0.5], np.float32)
TOMS = HEADS.index("toms")
PHASE_SHIFT = F.HOP // 2   # the second phase's frames are centred this many samples earlier
# a tom hit's pitch frames must still be buffered when the hit is decided
assert MARGIN >= RADIUS + PITCH_BEFORE + 1 and MARGIN >= PITCH_FRAMES
# a rescored candidate waits for rescore.AFTER frames; its rescore.BEFORE frames must still be buffered then
assert MARGIN >= rescore.BEFORE + rescore.AFTER


@dataclass
class Transcription:
    onsets: dict[str, np.ndarray]   # head -> (n, 2) [time s, velocity 1..127]
    duration: float
    envelope: np.ndarray            # per frame: onset probabilities weighted by TEMPO_WEIGHTS
    peak: float = 0.0               # the signal's largest |sample|
    tom_pitch: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per toms onset: peaks.hit_pitch, octaves
    stats: dict = field(default_factory=dict)


def combine_phases(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean of on-grid outputs a (n, k) and b, the outputs for frames centred half a hop earlier (b[i] at
    frame i - 1/2), brought onto a's grid as the mean of b[i] and b[i + 1]; past b's end its last row
    stands in. len(b) is n or n + 1."""
    n = len(a)
    after = b[1:n + 1]
    if len(after) < n:
        after = np.concatenate([after, b[-1:]])
    return 0.5 * a + 0.25 * (b[:n] + after)


def network_outputs(model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log-mel frames (t, mels) -> (onset probabilities, velocities), each (t, heads)."""
    import torch

    with torch.no_grad():
        logits, vel = model(torch.from_numpy(np.ascontiguousarray(x))[None])
    return torch.sigmoid(logits)[0].numpy(), vel[0].numpy()


def whole_signal(model, meta: dict, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One pass over a whole signal: -> (log-mel frames, onset probabilities, velocities), exactly what
    streaming inference computes block by block (used to choose thresholds and in tests)."""
    outputs = functools.partial(network_outputs, model)
    x = F.log_mel(audio)
    a, v = outputs(x)
    if meta.get("phases", 1) == 2:
        b, bv = outputs(F.log_mel(np.concatenate([np.zeros(PHASE_SHIFT, np.float32), audio])))
        a, v = combine_phases(a, b), combine_phases(v, bv)
    return x, a, v


class _Picker:
    """Peak picking over activations that arrive in pieces, identical to picking on the whole track."""

    def __init__(self, thresholds: np.ndarray, held: tuple[int, ...] = ()):
        self.th = thresholds
        self.held = held      # heads whose peaks are candidates for a rescorer: kept in `pending`, not found
        self.pending: list[tuple[int, int, float, float, float]] = []   # (head, frame, time, velocity, peak)
        self.acts = np.zeros((0, len(HEADS)), np.float32)
        self.vels = np.zeros((0, len(HEADS)), np.float32)
        self.start = 0        # global frame index of acts[0]
        self.done = 0         # frames < done are decided
        self.found = [[] for _ in HEADS]
        self.new_frames = [[] for _ in HEADS]   # peak frames (global index) of the onsets the last feed found

    def feed(self, acts: np.ndarray, vels: np.ndarray, final: bool = False) -> None:
        self.new_frames = [[] for _ in HEADS]
        self.acts = np.concatenate([self.acts, acts])
        self.vels = np.concatenate([self.vels, vels])
        end = self.start + len(self.acts)
        upto = end if final else end - RADIUS
        if upto <= self.done:
            return
        lo = max(self.start, self.done - RADIUS)
        seg_a = self.acts[lo - self.start:]
        seg_end = min(end, upto + RADIUS)
        seg_a = seg_a[:seg_end - lo]
        for h in range(len(HEADS)):
            frames, times, peaks = peak_frames(seg_a[:, h], float(self.th[h]), first_frame=lo)
            keep = (frames >= self.done) & (frames < upto)
            for t, fr, pk in zip(times[keep], frames[keep], peaks[keep]):
                v = float(self.vels[fr - self.start, h])
                if h in self.held:
                    self.pending.append((h, int(fr), max(0.0, float(t)), v, float(pk)))
                    continue
                self.found[h].append((max(0.0, float(t)), v, float(pk)))
                self.new_frames[h].append(int(fr))
        self.done = upto
        cut = max(0, self.done - 2 * RADIUS - self.start)
        self.acts, self.vels = self.acts[cut:], self.vels[cut:]
        self.start += cut

    def result(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """-> (head -> (n, 2) [time, velocity], mask of the tom onsets found that are kept)."""
        out = {}
        for h, name in enumerate(HEADS):
            arr = np.asarray(self.found[h], np.float64).reshape(-1, 3)
            arr[:, 1] = np.clip(np.rint(arr[:, 1] * 127), 1, 127)
            out[name] = arr
        kick = out["kick"]
        keep = not_kick_doubles(out["toms"][:, 0], out["toms"][:, 2], kick[:, 0], kick[:, 2])
        out["toms"] = out["toms"][keep]
        return {name: arr[:, :2] for name, arr in out.items()}, keep


def transcribe_blocks(blocks: Iterable[np.ndarray], model, meta: dict, *, where: str = "audio",
                      high_blocks: Iterable[np.ndarray] | None = None) -> Transcription:
    """Mono float32 blocks at features.SR -> Transcription. A model whose rescorers hear above 8 kHz
    (rescore.audio_rate(meta) > F.SR) also wants `high_blocks`: the same signal at that rate, block for
    block (each the same stretch of time as its block of `blocks`)."""
    import torch

    thresholds = np.asarray(meta["thresholds"], np.float32)
    specs = meta.get("rescore", {})
    rescored = {HEADS.index(h): (model.rescorers[h], float(sp["threshold"]), rescore.high_rate(sp))
                for h, sp in specs.items()}
    hi_rate = rescore.audio_rate(meta)
    if hi_rate > F.SR and high_blocks is None:
        raise ValueError(f"this model's rescorers hear {hi_rate} Hz audio: pass it as high_blocks")
    high_iter = iter(high_blocks) if hi_rate > F.SR else None
    for h, name in enumerate(HEADS):  # a rescored head's peaks are only candidates
        if name in specs:
            thresholds[h] = float(specs[name]["candidate_threshold"])
    mel = F.StreamingLogMel()
    two = meta.get("phases", 1) == 2
    mel2 = F.StreamingLogMel()  # the second phase: the signal delayed by PHASE_SHIFT
    early = mel2.push(np.zeros(PHASE_SHIFT, np.float32))
    picker = _Picker(thresholds, tuple(rescored))
    fbuf = np.zeros((0, F.N_MELS), np.float32)
    fbuf2 = early       # the second phase's frames from fstart on (as many as fbuf's, or one more)
    fstart = 0          # global frame index of fbuf[0]
    core = 0            # next frame whose activation is wanted
    # what the rescorers look at around a candidate: samples and activations, trimmed as fbuf is
    abuf = np.zeros(0, np.float32)
    astart = 0          # global sample index of abuf[0]
    acts_buf = np.zeros((0, len(HEADS)), np.float32)
    acts_start = 0      # global frame index of acts_buf[0]
    hbuf = np.zeros(0, np.float32)   # the signal at hi_rate, for rescorers hearing above 8 kHz
    hstart = 0          # global sample index (at hi_rate) of hbuf[0]
    env_parts: list[np.ndarray] = []
    tom_pitch: list[float] = []
    peak = 0.0

    def feed(a: np.ndarray, v: np.ndarray, final: bool) -> None:
        nonlocal acts_buf
        if rescored:
            acts_buf = np.concatenate([acts_buf, a])
        picker.feed(a, v, final=final)
        for fr in picker.new_frames[TOMS]:  # their frames are in fbuf now
            tom_pitch.append(hit_pitch(fbuf, fr - fstart))
        rescore_pending(final)

    def rescore_pending(final: bool) -> None:
        """Decide the candidates whose +-context is complete (all of them at the end), in frame order."""
        ready_below = acts_start + len(acts_buf) - rescore.AFTER
        ready = [c for c in picker.pending if final or c[1] < ready_below]
        if not ready:
            return
        picker.pending = [c for c in picker.pending if not (final or c[1] < ready_below)]
        frames, where = np.unique([c[1] for c in ready], return_inverse=True)  # heads share patches
        assert frames.min() - rescore.BEFORE >= max(fstart, acts_start) or not (fstart or acts_start), \
            "context trimmed too early"
        patches = rescore.patches(abuf, astart, fbuf, fstart, acts_buf, acts_start, frames)
        highs: dict[int, np.ndarray] = {}   # rate -> high-band patches
        for h, (net, threshold, rate) in rescored.items():
            rows = [k for k, c in enumerate(ready) if c[0] == h]
            if not rows:
                continue
            x = patches
            if rate:
                if rate not in highs:
                    highs[rate] = (rescore.high_patches(abuf, astart, frames) if rate == F.SR
                                   else rescore.high_patches(hbuf, hstart, frames, rate))
                x = (*patches, highs[rate])
            p = rescore.probabilities(net, *(a[where[rows]] for a in x))
            for (_, _, t, v, pk), q in zip((ready[k] for k in rows), p):
                if q > threshold:
                    picker.found[h].append((t, v, pk))

    def run(lo: int, hi: int, final: bool) -> None:
        """Activations of frames [core, hi) from features [lo, min(hi + MARGIN, have))."""
        nonlocal core
        have = fstart + len(fbuf)
        a, v = network_outputs(model, fbuf[lo - fstart:min(hi + MARGIN, have) - fstart])
        a, v = a[core - lo:hi - lo], v[core - lo:hi - lo]
        if two:  # the second phase's frames core..hi (one past: combine_phases interpolates)
            b, bv = network_outputs(model, fbuf2[lo - fstart:min(hi + 1 + MARGIN, fstart + len(fbuf2)) - fstart])
            a, v = combine_phases(a, b[core - lo:hi + 1 - lo]), combine_phases(v, bv[core - lo:hi + 1 - lo])
        feed(a, v, final)
        env_parts.append((a @ TEMPO_WEIGHTS).astype(np.float32))
        core = hi

    def consume(frames: np.ndarray, frames2: np.ndarray, final: bool) -> None:
        nonlocal fbuf, fbuf2, fstart, abuf, astart, acts_buf, acts_start, hbuf, hstart
        fbuf = np.concatenate([fbuf, frames])
        if two:
            fbuf2 = np.concatenate([fbuf2, frames2])
        while fstart + len(fbuf) >= core + WINDOW + MARGIN:
            run(max(0, core - MARGIN), core + WINDOW, False)
            cut = max(0, core - MARGIN - fstart)
            fbuf = fbuf[cut:]
            fbuf2 = fbuf2[cut:]
            fstart += cut
            if rescored:
                cut = max(0, fstart * F.HOP - rescore.LOW_FFT // 2 - astart)
                abuf, astart = abuf[cut:], astart + cut
                cut = max(0, fstart - acts_start)
                acts_buf, acts_start = acts_buf[cut:], acts_start + cut
                cut = max(0, (fstart * F.HOP - rescore.LOW_FFT // 2) * (hi_rate // F.SR) - hstart)
                hbuf, hstart = hbuf[cut:], hstart + cut
        if final:
            have = fstart + len(fbuf)
            if have > core:
                run(max(0, core - MARGIN), have, True)
            else:
                feed(np.zeros((0, len(HEADS)), np.float32), np.zeros((0, len(HEADS)), np.float32), True)

    with torch.inference_mode():
        for block in blocks:
            level = float(np.max(np.abs(block))) if len(block) else 0.0
            if not math.isfinite(level):
                raise BreakganError(f"{where}: the audio holds non-finite samples (NaN or inf)")
            peak = max(peak, level)
            if rescored:
                abuf = np.concatenate([abuf, np.asarray(block, np.float32).ravel()])
            if high_iter is not None and (hb := next(high_iter, None)) is not None:
                hbuf = np.concatenate([hbuf, np.asarray(hb, np.float32).ravel()])
            consume(mel.push(block), mel2.push(block) if two else None, False)
        for hb in high_iter or ():  # what is left of the high-rate signal, before the last decisions
            hbuf = np.concatenate([hbuf, np.asarray(hb, np.float32).ravel()])
        consume(mel.finish(), mel2.finish() if two else None, True)
    env = np.concatenate(env_parts) if env_parts else np.zeros(0, np.float32)
    onsets, tom_kept = picker.result()
    return Transcription(onsets, mel.samples / F.SR, env, peak,
                         tom_pitch=np.asarray(tom_pitch, np.float64).reshape(-1)[tom_kept])


def transcribe_file(path: str | Path, model_path=None, *, block_s: float = 5.0) -> tuple[Transcription, dict]:
    """Decode any audio through FFmpeg in blocks and transcribe it; -> (Transcription, model metadata)."""
    import torch

    from breakgan.media.audio import audio_blocks
    from breakgan.media.probe import probe
    from breakgan.transcribe.model import load_model

    path = Path(path)
    model, meta = load_model(model_path)
    known = probe(path).duration
    if known and known > MAX_DURATION_S:
        raise BreakganError(f"{path}: {known / 3600:.1f} hours of audio; transcription takes at most "
                            f"{MAX_DURATION_S / 3600:g} hours")
    threads = torch.get_num_threads()
    torch.set_num_threads(min(2, threads))  # one song at a time: two threads are near the best on CPU
    try:
        blocks = audio_blocks(path, F.SR, int(block_s * F.SR), max_samples=int(MAX_DURATION_S * F.SR))
        rate = rescore.audio_rate(meta)  # a second decoder, when a rescorer hears above 8 kHz
        high = (audio_blocks(path, rate, int(block_s * rate), max_samples=int(MAX_DURATION_S * rate))
                if rate > F.SR else None)
        result = transcribe_blocks(blocks, model, meta, where=str(path), high_blocks=high)
    finally:
        torch.set_num_threads(threads)
    return result, meta
