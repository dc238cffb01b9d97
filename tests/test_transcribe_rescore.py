"""Rescorers (breakgan/transcribe/rescore.py): the fine low band resolves bass pitches the mel front end
blurs, context patches are padded and level-free, a rescored head gives the same onsets streamed and in one
pass (the path thresholds are chosen on), and a file with broken rescorer metadata is one clean error."""

from __future__ import annotations

import json

import numpy as np
import pytest

from breakgan.transcribe import features as F
from breakgan.transcribe import rescore as R


def test_low_band_resolves_bass_notes_a_semitone_apart():
    t = np.arange(F.SR) / F.SR
    for f in (41.2, 43.65, 110.0, 116.5):  # E1 / F1, A2 / Bb2
        band = R.low_band(np.sin(2 * np.pi * f * t).astype(np.float32), np.array([50]))
        assert band.shape == (1, R.LOW_BINS)
        assert abs((np.argmax(band[0]) + 1) * F.SR / R.LOW_FFT - f) < F.SR / R.LOW_FFT  # bins start at 1
    # the same notes through the network's front end land in one mel band or two neighbours
    e1, f1 = (F.log_mel(np.sin(2 * np.pi * f * t).astype(np.float32))[50] for f in (41.2, 43.65))
    assert abs(int(np.argmax(e1)) - int(np.argmax(f1))) <= 1


def test_high_band_tells_a_sharp_attack_from_a_swell():
    """A click and a 30 ms swell of the same 4 kHz tone, both starting at one frame: in the fine high band
    the click's power rises by more within 10 ms (steps of 2.5 ms)."""
    t = np.arange(F.SR // 2) / F.SR
    tone = np.sin(2 * np.pi * 4000 * t)
    frame = 20
    s = frame * F.HOP
    click, swell = np.zeros_like(t), np.zeros_like(t)
    click[s:] = tone[s:] * np.exp(-(t[s:] - t[s]) / 0.02)
    swell[s:] = tone[s:] * np.minimum(1, (t[s:] - t[s]) / 0.03) * np.exp(-np.maximum(0, t[s:] - t[s] - 0.03) / 0.02)
    bands = [R.high_band(y.astype(np.float32), np.array([frame]))[0] for y in (click, swell)]
    assert bands[0].shape == (R.HIGH_WIDTH, R.high_bins())
    tone_bin = int(4000 / (F.SR / R.HIGH_FFT)) - R.HIGH_FIRST_BIN
    rise = [b[R.HIGH_BEFORE + 2, tone_bin] - b[R.HIGH_BEFORE - 2, tone_bin] for b in bands]  # 10 ms apart
    assert rise[0] > 10 and rise[0] > rise[1] + 3, rise  # log power: e^10 for the click


def test_the_high_band_at_32_khz_hears_above_8_khz():
    """A 12 kHz click at 32 kHz: its bin rises at the attack as a 4 kHz click's does at 16 kHz; the same click
    brought to 16 kHz leaves nothing to hear. The windows last 8 ms at both rates, so bins stay 125 Hz."""
    rate = 2 * F.SR
    assert R.high_bins(rate) == 113 and R.high_bins() == 49  # 2-16 kHz and 2-8 kHz
    t = np.arange(rate // 2) / rate
    frame = 20
    s = frame * F.HOP * 2
    click = np.zeros_like(t)
    click[s:] = np.sin(2 * np.pi * 12000 * t[s:]) * np.exp(-(t[s:] - t[s]) / 0.02)
    band = R.high_band(click.astype(np.float32), np.array([frame]), rate=rate)[0]
    assert band.shape == (R.HIGH_WIDTH, 113)
    b12 = 12000 // 125 - R.HIGH_FIRST_BIN
    assert np.argmax(band[R.HIGH_BEFORE + 2]) == b12
    assert band[R.HIGH_BEFORE + 2, b12] - band[R.HIGH_BEFORE - 2, b12] > 10
    low = R.high_band(F.to_model_rate(click, rate), np.array([frame]))[0]
    assert low.max() < band[R.HIGH_BEFORE + 2, b12] - 8  # at 16 kHz only the attack's splash is left


def test_patches_are_padded_at_the_edges_and_level_free():
    rng = np.random.default_rng(0)
    audio = rng.standard_normal(F.SR).astype(np.float32)
    mel = F.log_mel(audio)
    acts = rng.random((len(mel), 7)).astype(np.float32)
    low, m, a = R.patches(audio, 0, mel, 0, acts, 0, np.array([0, 50]))
    assert low.shape == (2, R.WIDTH, R.LOW_BINS) and m.shape == (2, R.WIDTH, F.N_MELS) and a.shape == (2, R.WIDTH, 7)
    assert not a[0, :R.BEFORE].any() and np.array_equal(a[0, R.BEFORE], acts[0])  # frames before 0 are zeros
    louder = R.patches(audio * 10, 0, F.log_mel(audio * 10), 0, acts, 0, np.array([50]))
    np.testing.assert_allclose(louder[0][0], low[1], atol=1e-3)
    np.testing.assert_allclose(louder[1][0], m[1], atol=1e-3)
    # a window of the signal (offsets given) sees what the whole signal shows
    part = R.patches(audio[4000:], 4000, mel[20:], 20, acts[20:], 20, np.array([50]))
    for whole, win in zip((low[1], m[1], a[1]), part):
        np.testing.assert_allclose(win[0], whole, atol=1e-4)
    empty = R.patches(audio, 0, mel, 0, acts, 0, np.array([], np.int64))
    assert [x.shape[0] for x in empty] == [0, 0, 0]
    # the fine high band: the same rules (offsets, padding, level)
    *_, high = R.patches(audio, 0, mel, 0, acts, 0, np.array([0, 50]), high=True)
    assert high.shape == (2, R.HIGH_WIDTH, R.high_bins())
    np.testing.assert_allclose(R.patches(audio * 10, 0, mel, 0, acts, 0, np.array([50]), high=True)[3][0], high[1],
                               atol=1e-3)
    np.testing.assert_allclose(R.patches(audio[4000:], 4000, mel[20:], 20, acts[20:], 20, np.array([50]),
                                         high=True)[3][0], high[1], atol=1e-4)
    assert R.patches(audio, 0, mel, 0, acts, 0, np.array([], np.int64), high=True)[3].shape[0] == 0


@pytest.mark.parametrize("phases,rate", [(1, F.SR), (2, F.SR), (2, 2 * F.SR)])
def test_a_rescored_head_streams_as_it_is_tuned(phases, rate):
    """transcribe_blocks (streamed in small windows) keeps exactly the candidates whose rescorer probability
    head_candidates finds above the threshold on infer.whole_signal's activations, and the rescorer does
    reject some peaks; with one frame phase and with two (infer.combine_phases); and with a hat rescorer
    that hears 32 kHz audio streamed beside the 16 kHz blocks."""
    from breakgan.transcribe import infer
    from breakgan.transcribe.model import HEADS, load_model

    model, meta = load_model()
    meta = {**meta, "phases": phases}
    assert set(meta["rescore"]) == {"kick", "snare", "hihat_closed"} == set(model.rescorers)
    assert meta["rescore"]["snare"]["high"] and meta["rescore"]["hihat_closed"]["high"]
    # the shipped hat rescorer's weights, made to hear up to 8 or up to 16 kHz
    meta["rescore"] = {**meta["rescore"], "hihat_closed": {**meta["rescore"]["hihat_closed"], "high_rate": rate}}
    assert R.audio_rate(meta) == rate
    rng = np.random.default_rng(1)
    n = rate * 12 + 100 * rate // F.SR  # the second phase gets one frame more than the first
    t = np.arange(n) / rate
    y = 0.02 * rng.standard_normal(n)
    for k, start in enumerate(np.arange(0.25, 11.5, 0.25)):  # thumps, bass notes and clicks
        s = int(start * rate)
        seg = t[:rate // 3]
        if k % 3 == 0:    # a kick-like falling sine
            y[s:s + len(seg)] += 0.8 * np.sin(2 * np.pi * (50 * seg + 150 * 0.03 * (1 - np.exp(-seg / 0.03)))) * np.exp(-seg / 0.12)
        elif k % 3 == 1:  # a bass note with a click on it
            y[s:s + len(seg)] += 0.4 * np.sin(2 * np.pi * 55 * seg) * np.minimum(1, seg / 0.005)
            y[s:s + 80] += 0.5 * rng.standard_normal(80)
        else:             # a noise burst (snare-like)
            m = 2000 * rate // F.SR
            y[s:s + m] += 0.5 * rng.standard_normal(m) * np.exp(-np.arange(m) / (m / 4))
    high = y.astype(np.float32)
    y = F.to_model_rate(high, rate)
    window = infer.WINDOW
    k = rate // F.SR
    try:
        infer.WINDOW = 300
        streamed = infer.transcribe_blocks((y[i:i + 5555] for i in range(0, len(y), 5555)), model, meta,
                                           high_blocks=(high[i:i + 5555 * k] for i in range(0, n, 5555 * k))
                                           if k > 1 else None)
    finally:
        infer.WINDOW = window
    x, acts, _ = infer.whole_signal(model, meta, y)
    cands = R.head_candidates(model, meta, y, x, acts, 0.3, high if k > 1 else None)
    rejected = kept_all = 0
    for name, spec in meta["rescore"].items():
        times, _, scores = cands[HEADS.index(name)]
        kept = times[scores > spec["threshold"]]
        rejected += int((scores <= spec["threshold"]).sum())
        kept_all += len(kept)
        np.testing.assert_allclose(streamed.onsets[name][:, 0], kept, atol=1e-6)
    assert rejected > 0 and kept_all > 5, (rejected, kept_all)


def test_combine_phases_brings_the_half_hop_early_frames_onto_the_grid():
    from breakgan.transcribe.infer import combine_phases

    t = np.arange(10, dtype=np.float64)[:, None] * np.ones((1, 3))
    np.testing.assert_allclose(combine_phases(t, np.vstack([t - 0.5, [[9.5] * 3]])), t)  # a ramp stays
    short = combine_phases(t, t - 0.5)  # no frame past the end: the last one stands in for it
    np.testing.assert_allclose(short[:-1], t[:-1])
    assert short[-1, 0] == 0.5 * 9 + 0.25 * (8.5 + 8.5)


def test_joined_rescorers_average_their_members_and_survive_a_save(tmp_path):
    """join_rescorers: the ensemble's probability is the mean of its members'; it saves and loads as one
    model; rescorers of another network, of another shape, or a head without one are refused."""
    import torch

    from breakgan.errors import BreakganError
    from breakgan.transcribe.model import join_rescorers, load_model, save_model

    a, b = load_model(), load_model()
    torch.manual_seed(3)
    for p in b[0].rescorers["hihat_closed"].parameters():  # another hat rescorer on the same network
        p.data.add_(0.05 * torch.randn_like(p))
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(F.SR * 2)).astype(np.float32)
    mel = rng.standard_normal((200, F.N_MELS)).astype(np.float32)
    acts = rng.random((200, 7)).astype(np.float32)
    x = R.patches(audio, 0, mel, 0, acts, 0, np.array([20, 60, 150]), high=True)
    pa, pb = (R.probabilities(m.rescorers["hihat_closed"], *x) for m, _ in (a, b))
    assert np.abs(pa - pb).max() > 1e-3
    net, meta = join_rescorers([a, b], "hihat_closed")
    assert meta["rescore"]["hihat_closed"]["members"] == 2 and len(meta["rescore"]["hihat_closed"]["training"]["members"]) == 2
    np.testing.assert_allclose(R.probabilities(net.rescorers["hihat_closed"], *x), (pa + pb) / 2, atol=1e-5)
    again, meta2 = load_model(save_model(net, tmp_path / "joined.safetensors", meta))
    assert isinstance(again.rescorers["hihat_closed"], R.RescoreEnsemble) and meta2 == meta
    np.testing.assert_allclose(R.probabilities(again.rescorers["hihat_closed"], *x), (pa + pb) / 2, atol=1e-5)
    other = load_model()
    next(other[0].parameters()).data += 0.1  # a network weight (rescorers come after the network)
    with pytest.raises(BreakganError, match="networks differ"):
        join_rescorers([load_model(), other], "hihat_closed")
    with pytest.raises(BreakganError, match="differ in shape"):
        join_rescorers([load_model(), (load_model()[0], {**meta, "rescore": {"kick": {**meta["rescore"]["snare"]}}})], "kick")
    with pytest.raises(BreakganError, match="not every model"):
        join_rescorers([load_model(), load_model()], "ride")


def test_broken_rescorer_metadata_is_one_clean_error(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    from breakgan.errors import BreakganError
    from breakgan.transcribe.model import SHIPPED, load_model

    with safe_open(str(SHIPPED), framework="pt") as f:
        meta = json.loads(f.metadata()["breakgan"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    for bad in ({"kick": {"hidden": 128, "candidate_threshold": 0.3}},             # no threshold
                {"cowbell": {"hidden": 128, "candidate_threshold": 0.3, "threshold": 0.5}},
                {"kick": {"hidden": 128, "candidate_threshold": 1.5, "threshold": 0.5}},
                {"kick": {"hidden": 64, "candidate_threshold": 0.3, "threshold": 0.5}},  # weights of another size
                {"kick": {"hidden": 128, "candidate_threshold": 0.3, "threshold": 0.5, "high": "yes"}},
                {"kick": {"hidden": 128, "candidate_threshold": 0.3, "threshold": 0.5, "high": True}},  # no branch
                {"kick": {"hidden": 128, "candidate_threshold": 0.3, "threshold": 0.5, "members": 0}},
                {"kick": {"hidden": 128, "candidate_threshold": 0.3, "threshold": 0.5, "members": 2}},  # one's weights
                {"snare": {**meta["rescore"]["snare"], "high_rate": 44100}},
                {"kick": {"hidden": 128, "candidate_threshold": 0.3, "threshold": 0.5, "high_rate": 32000}}):  # no high
        path = tmp_path / "bad.safetensors"
        save_file(tensors, str(path), metadata={"breakgan": json.dumps({**meta, "rescore": bad})})
        with pytest.raises(BreakganError, match="bad.safetensors"):
            load_model(path)
    for phases in (3, "2"):
        save_file(tensors, str(path), metadata={"breakgan": json.dumps({**meta, "phases": phases})})
        with pytest.raises(BreakganError, match="'phases' must be 1 or 2"):
            load_model(path)


def test_train_rescore_attaches_a_rescorer_that_loads_and_runs(tmp_path, shared_dir, capsys):
    """Four synthesized clips and a few seconds of training: the file written loads, carries the rescorer and
    its training record, and transcribes; wrong options are one line each, before any synthesis."""
    from breakgan.transcribe import infer
    from breakgan.transcribe.model import SHIPPED, load_model
    from breakgan.transcribe.train_rescore import main

    groove = shared_dir / "data" / "groove"
    if not (groove / "info.csv").is_file():
        pytest.skip("no Groove MIDI Dataset in ../shared/")
    for bad, says in ((["--heads", "cowbell"], "--heads cowbell"), (["--minutes", "1", "2"], "--minutes"),
                      (["--accompaniment-p", "1.5"], "--accompaniment-p"), (["--keep", "cowbell"], "--keep cowbell"),
                      (["--high-rate", "32000"], "--high-rate: only with --high"),
                      (["--high", "--high-rate", "44100"], "--high-rate")):
        with pytest.raises(SystemExit) as e:
            main(["--groove", str(groove), "--work", str(tmp_path / "w"), "--model", str(SHIPPED),
                  "--out", str(tmp_path / "x.safetensors"), *bad])
        assert e.value.code == 2 and says in capsys.readouterr().err
    out = tmp_path / "r.safetensors"
    main(["--groove", str(groove), "--work", str(tmp_path / "w"), "--model", str(SHIPPED), "--heads", "kick",
          "--seeds", "7", "--clips", "4", "--minutes", "0.05", "--threads", "1", "--out", str(out)])
    model, meta = load_model(out)
    assert "kick" in model.rescorers and meta["rescore"]["kick"]["training"]["clips"] == 4
    assert meta["rescore"]["kick"]["training"]["candidates"] > 0
    # a rescorer with the fine high band added beside it (the synthesized set is reused from --work)
    both = tmp_path / "r2.safetensors"
    main(["--groove", str(groove), "--work", str(tmp_path / "w"), "--model", str(out), "--heads", "snare", "--high",
          "--keep", "kick", "--seeds", "7", "--clips", "4", "--minutes", "0.05", "--threads", "1", "--out", str(both)])
    model, meta = load_model(both)
    assert set(meta["rescore"]) == {"kick", "snare"} and meta["rescore"]["snare"]["high"] is True
    assert model.rescorers["snare"].high is not None and model.rescorers["kick"].high is None
    y = np.zeros(F.SR * 3, np.float32)
    y[::4000] = 0.9
    tr = infer.transcribe_blocks([y], model, meta)
    assert set(tr.onsets) == set(meta["heads"])
