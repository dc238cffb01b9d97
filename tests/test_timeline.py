"""Timeline: onsets.json / drums folders / audio -> per-part onsets; the envelope."""

import json
import time

import numpy as np
import pytest
import soundfile as sf

from breakgan.errors import BreakganError
from breakgan.parts import PARTS
from breakgan.timeline import (Timeline, envelope, frame_count, frame_times, timeline_from_audio,
                               timeline_from_drums, timeline_from_onsets)


def onsets_dict(**parts):
    return {"tempo": 120.0, "steps_per_quarter": 4, "beats_per_bar": 4, "bars": 1, "duration": 2.0,
            "audio": "mix.wav", "selected_parts": list(parts),
            "parts": {p: [{"time": t, "step": int(t * 8), "velocity": v} for t, v in parts.get(p, [])]
                      for p in PARTS}}


def test_from_onsets_sorts_scales_and_fills_all_parts(tmp_path):
    data = onsets_dict(kick=[(1.0, 127), (0.0, 64)], snare=[(0.5, 100)])
    del data["parts"]["ride"]  # a missing part is an empty part
    tl = timeline_from_onsets(data, tmp_path)
    assert set(tl.parts) == set(PARTS)
    np.testing.assert_allclose(tl.parts["kick"], [[0.0, 64 / 127], [1.0, 1.0]])
    assert tl.parts["ride"].shape == (0, 2)
    assert tl.duration == 2.0 and tl.tempo == 120.0 and tl.beats_per_bar == 4
    assert tl.audio == tmp_path / "mix.wav"
    assert tl.active_parts == ("kick", "snare")
    assert tl.frame_count(30) == 60


def test_from_onsets_rejects_unknown_part_and_bad_times():
    data = onsets_dict(kick=[(0.0, 100)])
    data["parts"]["cowbell"] = []
    with pytest.raises(BreakganError, match="cowbell"):
        timeline_from_onsets(data)
    bad = onsets_dict()
    bad["parts"]["kick"] = [{"velocity": 3}]
    with pytest.raises(BreakganError, match="kick"):
        timeline_from_onsets(bad)


def test_from_drums_folder_picks_candidate(tmp_path):
    out = tmp_path / "drums"
    for i, t in ((1, 0.25), (2, 0.75)):
        c = out / f"cand-{i:02d}"
        c.mkdir(parents=True)
        (c / "onsets.json").write_text(json.dumps(onsets_dict(kick=[(t, 100)])))
    assert timeline_from_drums(out).parts["kick"][0, 0] == 0.25
    assert timeline_from_drums(out, 2).parts["kick"][0, 0] == 0.75
    assert timeline_from_drums(out / "cand-02").audio == out / "cand-02" / "mix.wav"
    with pytest.raises(BreakganError, match="candidate 3"):
        timeline_from_drums(out, 3)


def test_from_drums_without_onsets_names_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BreakganError, match="empty: no onsets.json"):
        timeline_from_drums(tmp_path / "empty")
    with pytest.raises(BreakganError, match="no such drums folder"):
        timeline_from_drums(tmp_path / "missing")


def drum_audio(path, sr=22050, seconds=4.0):
    """Kicks (60 Hz thumps) on beats and hats (noise bursts) on off-beats, at 120 bpm."""
    rng = np.random.default_rng(0)
    y = np.zeros(int(sr * seconds), np.float32)
    kicks, hats = np.arange(0.25, seconds - 0.4, 0.5), np.arange(0.5, seconds - 0.4, 0.5)
    n = int(0.3 * sr)  # long enough to decay fully: no click at the cut
    tt = np.arange(n) / sr
    for t in kicks:
        i = int(t * sr)
        y[i:i + n] += 0.8 * np.sin(2 * np.pi * 60 * tt) * np.exp(-tt / 0.04)
    m = int(0.03 * sr)
    for t in hats:
        i = int(t * sr)
        noise = rng.standard_normal(m)
        hp = np.diff(noise, prepend=0.0)  # crude high-pass
        y[i:i + m] += 0.3 * hp * np.exp(-np.arange(m) / sr / 0.008)
    sf.write(path, y, sr)
    return kicks, hats


def test_from_audio_finds_kicks_low_and_hats_high(tmp_path):
    wav = tmp_path / "song.wav"
    kicks, hats = drum_audio(wav)
    tl = timeline_from_audio(wav)
    assert tl.audio == wav and tl.duration == pytest.approx(4.0, abs=0.01)
    got_k = tl.parts["kick"][:, 0]
    got_h = tl.parts["hihat_closed"][:, 0]
    # every kick found within 30 ms, and kicks are not reported as hats
    assert all(np.min(np.abs(got_k - t)) < 0.03 for t in kicks)
    assert all(np.min(np.abs(got_h - t)) < 0.03 for t in hats)
    assert not any(np.min(np.abs(got_h - t)) < 0.03 for t in kicks)
    assert np.all((tl.parts["kick"][:, 1] > 0) & (tl.parts["kick"][:, 1] <= 1))


def test_from_audio_without_onsets_is_a_clear_error(tmp_path):
    wav = tmp_path / "silence.wav"
    sf.write(wav, np.zeros(22050, np.float32), 22050)
    with pytest.raises(BreakganError, match="silence.wav: no onsets found"):
        timeline_from_audio(wav)


def test_frame_grid():
    assert frame_count(8.0, 30) == 240 and frame_count(1.0 / 60, 30) == 1
    np.testing.assert_allclose(frame_times(3, 10), [0.05, 0.15, 0.25])


def test_envelope_shape():
    onsets = np.array([[1.0, 1.0], [2.0, 0.5]])
    t = np.array([0.5, 1.0, 1.05, 1.1, 1.3, 1.6, 2.1, 5.0])
    env = envelope(onsets, t, attack_s=0.1, release_s=0.4)
    np.testing.assert_allclose(env, [0, 0, 0.5, 1.0, 0.5, 0.0, 0.5, 0.0], atol=1e-9)
    assert envelope(np.zeros((0, 2)), t, 0.1, 0.4).sum() == 0
    # a quiet hit right after a loud one does not cut the loud one's decay
    close = np.array([[1.0, 1.0], [1.15, 0.2]])
    assert envelope(close, np.array([1.2]), 0.1, 0.4)[0] == pytest.approx(0.75)


def test_envelope_ten_minutes_is_fast():
    # not a benchmark: a guard that the envelope stays vectorised (target is far below this bound)
    onsets = np.stack([np.arange(0, 600, 0.125), np.ones(4800)], 1)
    t = frame_times(frame_count(600, 30), 30)
    t0 = time.perf_counter()
    envelope(onsets, t, 0.06, 0.4)
    assert time.perf_counter() - t0 < 1.0


def test_timeline_is_frozen():
    tl = Timeline({p: np.zeros((0, 2)) for p in PARTS}, 1.0)
    with pytest.raises(AttributeError):
        tl.duration = 2.0


def test_audio_analysis_in_blocks_matches_whole_signal(tmp_path):
    from breakgan.media import decode_audio
    from breakgan.timeline import onset_strengths

    drum_audio(tmp_path / "song.wav", seconds=6.0)
    y = decode_audio(tmp_path / "song.wav", 22050)
    whole = onset_strengths(y, 22050, block_s=60.0)
    blocks = onset_strengths(y, 22050, block_s=2.0, margin_s=1.0)  # bounded memory for long songs
    for band in whole:
        np.testing.assert_allclose(blocks[band], whole[band], atol=1e-4)


def test_streamed_song_analysis_matches_the_whole_signal(tmp_path):
    """timeline_from_audio streams the song from FFmpeg in analysis windows; its onsets, velocities and
    tempo equal those of the whole decoded signal analysed at once, hits on window seams included."""
    import librosa

    from breakgan.media import decode_audio
    from breakgan.timeline import AUDIO_BANDS_HZ, _band_strengths, _peak_ref, onsets_from_signal

    wav = tmp_path / "song.wav"
    _, hats = drum_audio(wav, seconds=6.0)
    sr, hop = 22050, 256
    y = decode_audio(wav, sr)
    whole = _band_strengths(y, sr, hop, AUDIO_BANDS_HZ, _peak_ref(float(np.max(np.abs(y)))))
    expected = onsets_from_signal(None, sr, hop_length=hop, strengths=whole)
    bpm = round(float(librosa.feature.tempo(onset_envelope=whole["all"], sr=sr, hop_length=hop)[0]), 2)
    # 1.5 s windows: seams at 1.498, 2.996 and 4.494 s, 2-7 ms before the hats at 1.5, 3.0 and 4.5 s
    tl = timeline_from_audio(wav, block_s=1.5, margin_s=1.0)
    for part, exp in expected.items():
        got = tl.onsets(part)
        assert got.shape == exp.shape and len(got), part  # nothing lost or doubled at a seam
        assert np.max(np.abs(got[:, 0] - exp[:, 0])) <= hop / sr
        np.testing.assert_allclose(got[:, 1], exp[:, 1], atol=1e-3)
    assert tl.tempo == bpm
    got_h = tl.onsets("hihat_closed")[:, 0]
    assert all(np.min(np.abs(got_h - t)) < 0.03 for t in (1.5, 3.0, 4.5))


def test_mean_tempogram_in_chunks_equals_librosa():
    import librosa

    from breakgan.timeline import mean_tempogram, tempo_from_envelope

    sr, hop = 22050, 256
    rng = np.random.default_rng(1)
    env = (0.2 * rng.random(3000)).astype(np.float32)
    env[::40] += 1.0  # a pulse every 40 frames: 129 bpm
    win = int(librosa.time_to_frames(8.0, sr=sr, hop_length=hop))
    whole = librosa.feature.tempogram(onset_envelope=env, sr=sr, hop_length=hop, win_length=win)
    np.testing.assert_allclose(mean_tempogram(env, sr, hop, chunk=97), whole.mean(axis=1), rtol=1e-5, atol=1e-6)
    expected = float(librosa.feature.tempo(onset_envelope=env, sr=sr, hop_length=hop)[0])
    assert tempo_from_envelope(env, sr, hop) == round(expected, 2)
    assert abs(expected - 60 * sr / hop / 40) < 2


def test_audio_blocks_stream_the_song_and_stop_cleanly(tmp_path):
    import psutil

    from breakgan.media import audio_blocks

    wav = tmp_path / "song.wav"
    drum_audio(wav, seconds=1.0)
    y, _ = sf.read(wav, dtype="float32")
    blocks = list(audio_blocks(wav, 22050, 1000))
    assert [len(b) for b in blocks[:-1]] == [1000] * (len(blocks) - 1) and 0 < len(blocks[-1]) <= 1000
    np.testing.assert_allclose(np.concatenate(blocks), y, atol=1e-6)
    stream = audio_blocks(wav, 22050, 1000)
    next(stream)
    stream.close()  # FFmpeg is ended, not left writing into a pipe nobody reads
    assert not [p for p in psutil.Process().children() if "ffmpeg" in p.name()]
    with pytest.raises(BreakganError, match="song.wav: audio longer than"):
        list(audio_blocks(wav, 22050, 1000, max_samples=5000))


def test_song_limits_are_clean_errors(tmp_path, monkeypatch):
    import breakgan.timeline as timeline

    bad = tmp_path / "nan.wav"
    y = np.zeros(22050, np.float32)
    y[100] = np.nan
    sf.write(bad, y, 22050, subtype="FLOAT")
    with pytest.raises(BreakganError, match="nan.wav: the audio holds non-finite samples"):
        timeline_from_audio(bad)
    wav = tmp_path / "song.wav"
    drum_audio(wav, seconds=2.0)
    monkeypatch.setattr(timeline, "MAX_DURATION_S", 1.0)  # the real limit is 6 hours
    with pytest.raises(BreakganError, match="song.wav: .* hours of audio"):
        timeline_from_audio(wav)
