"""breakgan drums: encoding vs note-seq, model maths, seeds, outputs, determinism, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf
import torch

from breakgan.cli import main
from breakgan.drums.checkpoint import SHIPPED_MODEL, load_model, save_model
from breakgan.drums.encoding import (encoder_decoder, hits_from_labels, labels_from_events, labels_from_pattern,
                                     model_inputs, part_pitches)
from breakgan.drums.generate import BeamOptions, FastDrums
from breakgan.drums.model import DrumsConfig, DrumsRNN
from breakgan.drums.seed import pattern_to_text, seed_from_midi, seed_from_pattern
from breakgan.errors import BreakganError
from breakgan.parts import PART_PITCH, PARTS

SMALL = DrumsConfig(layers=(24, 24, 24), attn_length=8)


def write_midi(path: Path, notes, *, tpq=96, tempos=((0, 500000),), sig=(4, 4), channel=9, tail_cc_ticks=0,
               extra_tracks=()):
    """notes: (tick, pitch, velocity). Notes last 1/16 of a quarter... enough for drums."""
    mf = mido.MidiFile(type=1, ticks_per_beat=tpq)
    meta = mido.MidiTrack()
    events = [(t, mido.MetaMessage("set_tempo", tempo=u)) for t, u in tempos]
    if sig:
        events.append((0, mido.MetaMessage("time_signature", numerator=sig[0], denominator=sig[1])))
    now = 0
    for t, m in sorted(events, key=lambda e: e[0]):
        meta.append(m.copy(time=t - now))
        now = t
    mf.tracks.append(meta)
    for ch, ns in [(channel, notes), *extra_tracks]:
        tr = mido.MidiTrack()
        ev = sorted([(t, 1, p, v) for t, p, v in ns] + [(t + tpq // 8, 0, p, 0) for t, p, v in ns])
        now = 0
        for t, on, p, v in ev:
            tr.append(mido.Message("note_on" if on else "note_off", channel=ch, note=p, velocity=v, time=t - now))
            now = t
        if tail_cc_ticks:
            tr.append(mido.Message("control_change", channel=ch, control=4, value=90, time=tail_cc_ticks))
        mf.tracks.append(tr)
    mf.save(str(path))
    return path


def tiny_model(path: Path, seed=0) -> Path:
    torch.manual_seed(seed)
    m = DrumsRNN(SMALL)
    m.reset_parameters(torch.Generator().manual_seed(seed))
    with torch.no_grad():
        m.fc_b.add_(torch.randn(512) * 2)  # a peaky output distribution, so sampling is not uniform noise
    return save_model(path, m, {"note": "random test model"})


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("model") / "tiny.safetensors")


# ---- encoding ---------------------------------------------------------------------------------------

def test_encoding_matches_note_seq():
    enc = encoder_decoder()
    assert (enc.input_size, enc.num_classes) == (518, 512)
    rng = np.random.default_rng(0)
    pitches = [36, 35, 38, 40, 42, 22, 44, 46, 26, 45, 48, 50, 49, 58, 51, 59, 99, 0]  # incl. Roland + unknown
    events = [frozenset(rng.choice(pitches, size=rng.integers(0, 4), replace=False).tolist()) for _ in range(70)]
    labels = labels_from_events(events)
    ours = model_inputs(labels)
    for pos in range(70):  # 70 > 64: the 6-bit counter wraps
        assert enc.events_to_label(events, pos) == labels[pos]
        assert np.array_equal(ours[pos], np.asarray(enc.events_to_input(events, pos), np.float32)), pos
    # pattern route (velocity grid per part) gives the same classes as note-seq's pitch sets
    grid = np.zeros((70, 9), np.uint8)
    table = {p: k for k in range(9) for p in [part_pitches()[k]]}
    for i, ev in enumerate(events):
        for lab_bit in range(9):
            if labels[i] >> lab_bit & 1:
                grid[i, lab_bit] = 90
    assert np.array_equal(labels_from_pattern(grid), labels)
    assert np.array_equal(labels_from_pattern(hits_from_labels(labels)), labels)
    # decoding pitches: note-seq's first pitch per class == the project's PART_PITCH
    assert {PARTS[k]: p for k, p in enumerate(part_pitches())} == PART_PITCH
    assert table  # noqa
    dec = enc._one_hot_encoding.decode_event(int(labels[5]))
    assert sorted(dec) == sorted(part_pitches()[k] for k in range(9) if labels[5] >> k & 1)


def test_fast_generator_matches_reference_model():
    torch.manual_seed(1)
    m = DrumsRNN(DrumsConfig(layers=(32, 24, 16), attn_length=5)).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    labels = torch.randint(0, 512, (3, 20))
    from breakgan.drums.encoding import counter_bits

    ref = m(labels, torch.from_numpy(counter_bits(np.arange(20))))
    before = {k: v.clone() for k, v in m.state_dict().items()}
    for numpy_blas in (True, False):  # CPU generation uses numpy's BLAS; torch's is the path for CUDA
        fast = FastDrums(m, numpy_blas=numpy_blas)
        assert all(torch.equal(v, before[k]) for k, v in m.state_dict().items())  # folding copies
        assert fast.numpy_blas == numpy_blas
        for rows in (slice(0, 3), slice(1, 2)):  # a batch, and the batch-1 step sampling uses
            with torch.inference_mode():
                st = fast.new_state(rows.stop - rows.start)
                got = torch.stack([fast.step(st, labels[rows, t]).clone() for t in range(20)], 1)
            assert torch.allclose(got, ref[rows], atol=1e-4), (numpy_blas, rows, (got - ref[rows]).abs().max())
    # beam search keeps the primer and returns the requested length
    out = fast.generate(np.array([1, 0, 4]), 40, temperature=1.0, seed=3, beam=BeamOptions(3, 2, 4))
    assert len(out) == 40 and list(out[:3]) == [1, 0, 4] and out.max() < 512


@pytest.mark.slow
def test_tiny_model_overfits_one_pattern(tmp_path):
    """Train through `breakgan drums train` on a one-bar loop; temperature 0 regenerates it exactly."""
    seed = seed_from_pattern("kick: x.....x...x..x..; snare: ....x..x....x...; hh: x.x.x.x.x.xxx.x.")
    song = np.tile(seed.pattern, (4, 1))  # 4 bars = 64 steps
    from breakgan.drums.output import midi_bytes

    (tmp_path / "midi").mkdir()
    (tmp_path / "midi" / "loop.mid").write_bytes(midi_bytes(song, 120.0, 4))
    args = ["drums", "train", str(tmp_path / "midi"), "--out", str(tmp_path / "m"), "--batch-size", "1",
            "--max-steps", "64", "--layers", "48,48,48", "--dropout-keep", "1.0", "--learning-rate", "0.01",
            "--validation-fraction", "0", "--save-every", "1000", "--eval-every", "1000", "--min-bars", "2",
            "--threads", "1"]
    assert _cli([*args, "--steps", "150"]) == 0
    model, info = load_model(tmp_path / "m")
    assert info["step"] == 150
    labels = labels_from_pattern(song)
    out = FastDrums(model).generate(labels[:1], 64, temperature=0.0)
    assert np.array_equal(out, labels), pattern_to_text(hits_from_labels(out).astype(np.uint8) * 100)
    # resume: the checkpoint's step count continues
    assert _cli([*args, "--steps", "151"]) == 0
    assert load_model(tmp_path / "m")[1]["step"] == 151


def _train_args(tmp_path: Path, out: str) -> list[str]:
    seed = seed_from_pattern("kick: x...x...x...x...; snare: ....x.......x...; hh: x.x.x.x.x.x.x.x.")
    from breakgan.drums.output import midi_bytes

    (tmp_path / "midi").mkdir(exist_ok=True)
    (tmp_path / "midi" / "loop.mid").write_bytes(midi_bytes(np.tile(seed.pattern, (4, 1)), 120.0, 4))
    return ["drums", "train", str(tmp_path / "midi"), "--out", str(tmp_path / out), "--batch-size", "1",
            "--max-steps", "32", "--layers", "8,8", "--dropout-keep", "0.5", "--validation-fraction", "0",
            "--save-every", "1000", "--eval-every", "1000", "--min-bars", "1", "--threads", "1"]


def test_resume_is_exact_from_one_atomic_checkpoint(tmp_path):
    """2 steps, then resume to 4 == 4 steps at once, bit for bit (weights, Adam state, dropout, batch order)."""
    from safetensors import safe_open

    assert _cli([*_train_args(tmp_path, "straight"), "--steps", "4"]) == 0
    assert _cli([*_train_args(tmp_path, "resumed"), "--steps", "2"]) == 0
    assert _cli([*_train_args(tmp_path, "resumed"), "--steps", "4"]) == 0
    log = [json.loads(line) for line in (tmp_path / "resumed" / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log if "loss" in e] == [1, 2, 3, 4]  # continued at 3, not restarted
    files = {}
    for name in ("straight", "resumed"):
        folder = tmp_path / name
        assert (folder / "checkpoint.safetensors").is_file() and not (folder / "train_state.json").exists()
        with safe_open(str(folder / "checkpoint.safetensors"), framework="pt") as f:
            assert json.loads(f.metadata()["breakgan"])["step"] == 4
            files[name] = {k: f.get_tensor(k) for k in f.keys()}
    assert files["straight"].keys() == files["resumed"].keys()
    assert any(k.startswith("opt.") for k in files["straight"])
    for k, v in files["straight"].items():
        assert torch.equal(v, files["resumed"][k]), k


def test_resume_reads_the_legacy_three_file_state(tmp_path):
    """A model folder written by the earlier three-file format resumes and is then rewritten as one file."""
    from safetensors.torch import save_file

    from breakgan.drums.checkpoint import load_train_state

    model = DrumsRNN(DrumsConfig(layers=(8, 8), attn_length=8))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.zeros(1, 4, dtype=torch.long), torch.zeros(4, 6)).sum().backward()
    opt.step()
    save_model(tmp_path / "model.safetensors", model, {"step": 7})
    tensors, slots = {}, []
    for i, p in enumerate(model.parameters()):
        st = opt.state[p]
        tensors[f"{i}.exp_avg"], tensors[f"{i}.exp_avg_sq"] = st["exp_avg"], st["exp_avg_sq"]
        slots.append([i, float(st["step"])])
    save_file(tensors, str(tmp_path / "train_state.safetensors"))
    (tmp_path / "train_state.json").write_text(json.dumps({"step": 7, "adam_steps": slots}))
    fresh = DrumsRNN(DrumsConfig(layers=(8, 8), attn_length=8))
    fresh_opt = torch.optim.Adam(fresh.parameters(), lr=1e-3)
    assert load_train_state(tmp_path, fresh, fresh_opt) == 7
    for a, b in zip(model.parameters(), fresh.parameters()):
        assert torch.equal(a, b) and torch.equal(opt.state[a]["exp_avg_sq"], fresh_opt.state[b]["exp_avg_sq"])
    (tmp_path / "train_state.json").write_text("{not json")
    with pytest.raises(BreakganError, match="cannot resume"):
        load_train_state(tmp_path, fresh, fresh_opt)


# ---- seeds --------------------------------------------------------------------------------------

def test_seed_midi_tempo_map_trailing_cc_and_short_seed(tmp_path):
    tpq = 96
    # kick on beat 1, snare on beat 2 at 120 BPM, then the tempo halves: hihat on beat 3 stays on step 8
    notes = [(0, 36, 100), (tpq, 38, 90), (2 * tpq, 42, 80), (2 * tpq + tpq // 2, 22, 70)]
    p = write_midi(tmp_path / "map.mid", notes, tpq=tpq, tempos=((0, 500000), (tpq + 10, 1000000)),
                   tail_cc_ticks=tpq * 40)  # a pedal CC 10 bars later must not lengthen the seed
    s = seed_from_midi(p)
    assert s.tempo == 120.0 and s.tempo_changes == 1
    assert s.pattern.shape == (16, 9)  # shorter than a bar -> one bar
    assert s.pattern[0, 0] == 100 and s.pattern[4, 1] == 90 and s.pattern[8, 2] == 80
    assert s.pattern[10, 2] == 70  # Roland 22 (hi-hat edge) -> closed hi-hat
    # leading empty bars are skipped; pattern ends at the bar of the last note
    p2 = write_midi(tmp_path / "late.mid", [(tpq * 8, 36, 100), (tpq * 13, 38, 100)], tpq=tpq)
    s2 = seed_from_midi(p2)
    assert s2.pattern.shape == (32, 9) and s2.pattern[0, 0] and s2.pattern[20, 1]


def test_seed_time_signatures(tmp_path, model_file):
    p = write_midi(tmp_path / "68.mid", [(0, 36, 100)], sig=(6, 8))
    assert seed_from_midi(p).beats_per_bar == 3
    from breakgan.drums import generate_onsets

    o = generate_onsets(p, model=model_file, bars=2, tempo=90)  # 6/8 = 3 quarters a bar
    assert o["beats_per_bar"] == 3 and o["duration"] == pytest.approx(2 * 3 * 60 / 90)
    assert max((h["step"] for v in o["parts"].values() for h in v), default=0) < 24
    p = write_midi(tmp_path / "58.mid", [(0, 36, 100)], sig=(5, 8))
    with pytest.raises(BreakganError, match="5/8.*--beats-per-bar"):
        seed_from_midi(p)
    assert seed_from_midi(p, beats_per_bar=5).steps_per_bar == 20


def test_seed_pattern_grid():
    s = seed_from_pattern("kick: x...X...; snare = ..o.|....\nhh x.x.x.x.", tempo=100)
    assert s.pattern.shape == (8, 9) and s.tempo == 100
    assert list(s.pattern[:, 0]) == [100, 0, 0, 0, 127, 0, 0, 0]
    assert s.pattern[2, 1] == 60 and s.pattern[6, 2] == 100
    for bad, msg in [("", "empty"), ("cowbell: x...", "unknown part"), ("kick: x..y", "unexpected"),
                     ("kick: ....", "no hits")]:
        with pytest.raises(BreakganError, match=msg):
            seed_from_pattern(bad)


# ---- the command: outputs agree, determinism, bad inputs ----------------------------------------------

def _cli(args) -> int:
    try:
        main(args)
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def _midi_onsets(path: Path) -> list[tuple[float, int, int]]:
    mf = mido.MidiFile(str(path))
    out, t = [], 0.0
    for msg in mf:  # iterating a MidiFile yields messages with delta times in seconds (tempo applied)
        t += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            out.append((round(t, 4), msg.note, msg.velocity))
    return out


GRID = ("kick: x.......x.......|x.......x.......; snare: ....x.......x...|....x.......x...;"
        " hh: ..x.......x.....|..x.......x.....; oh: ......x.........|......x.........;"
        " lt: ...x............|................; mt: .....x..........|................;"
        " ht: .......x........|................; crash: .........x......|................;"
        " ride: ...............x|................")


def _check_candidate(c: Path) -> dict:
    """onsets.json, pattern.mid, parts/*.mid agree; stems line up with the mix (their selected sum)."""
    onsets = json.loads((c / "onsets.json").read_text())
    all_midi = _midi_onsets(c / "pattern.mid")
    mix, rate = sf.read(str(c / "mix.wav"))
    stems_sum = np.zeros_like(mix)
    n_hits = 0
    stems = {}
    for part in PARTS:
        want = [(round(o["time"], 4), PART_PITCH[part], o["velocity"]) for o in onsets["parts"][part]]
        assert _midi_onsets(c / "parts" / f"{part}.mid") == want
        assert all(w in all_midi for w in want)
        n_hits += len(want)
        stem, r = sf.read(str(c / "stems" / f"{part}.wav"))
        assert r == rate and stem.shape == mix.shape  # sample-aligned with the mix
        if part in onsets["selected_parts"]:
            stems_sum += stem
        stems[part] = stem
    assert len(all_midi) == n_hits
    gain = json.loads((c / "breakgan.json").read_text())["mix_gain"]
    assert np.abs(stems_sum * gain - mix).max() < 1e-3  # the mix is the selected stems' sum
    return {"onsets": onsets, "stems": stems, "rate": rate, "mix": mix}


def test_outputs_agree_with_audible_transients(tmp_path, model_file):
    out = tmp_path / "d"
    rc = _cli(["drums", "--seed-pattern", GRID, "--out", str(out), "--model", str(model_file), "--bars", "2",
               "--tempo", "100", "--parts", "kick,snare,crash", "--sample-rate", "22050"])
    assert rc == 0
    rec = json.loads((out / "breakgan.json").read_text())
    assert rec["stage"] == "drums" and rec["candidates"] == ["cand-01"]
    c = out / "cand-01"
    got = _check_candidate(c)
    onsets, rate = got["onsets"], got["rate"]
    assert onsets["tempo"] == 100.0 and onsets["bars"] == 2 and onsets["beats_per_bar"] == 4
    assert onsets["duration"] == pytest.approx(2 * 4 * 60 / 100)
    assert onsets["selected_parts"] == ["kick", "snare", "crash"] and set(onsets["parts"]) == set(PARTS)
    assert onsets["parts"]["kick"][:2] == [{"time": 0.0, "step": 0, "velocity": 100},
                                           {"time": 1.2, "step": 8, "velocity": 100}]
    for part in PARTS:
        env = np.abs(got["stems"][part]).max(1)
        times = [o["time"] for o in onsets["parts"][part]]
        assert times, part
        edges = np.r_[0, [int(round(t * rate)) for t in times], len(env)]
        for k, t in enumerate(times):  # silent before each hit, a transient within 10 ms of it
            s = edges[k + 1]
            before = env[max(0, s - 200):s].max(initial=0)
            after = env[s:s + int(0.010 * rate)].max()
            assert after > max(0.01, 3 * before), (part, t, before, after)
        assert env[:edges[1]].max(initial=0) < 1e-3, part  # nothing sounds before the first hit
    assert (c / "pianoroll.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_generated_candidates_are_deterministic(tmp_path, model_file):
    args = ["drums", "--seed-pattern", "kick: x.......x.......; snare: ....x.......x...", "--model",
            str(model_file), "--bars", "2", "--tempo", "100", "--sample-rate", "16000", "--random-seed", "5"]
    out, out2 = tmp_path / "a", tmp_path / "b"
    assert _cli([*args, "--out", str(out), "--candidates", "2"]) == 0
    assert _cli([*args, "--out", str(out2), "--candidates", "1"]) == 0
    c = out / "cand-01"
    got = _check_candidate(c)
    assert got["onsets"]["parts"]["snare"][0]["step"] == 4  # the seed is kept
    assert (c / "pattern.mid").read_bytes() != (out / "cand-02" / "pattern.mid").read_bytes()
    for f in ["pattern.mid", *[f"parts/{p}.mid" for p in PARTS], "onsets.json"]:
        assert (out2 / "cand-01" / f).read_bytes() == (c / f).read_bytes(), f
    assert np.array_equal(sf.read(str(out2 / "cand-01" / "mix.wav"))[0], got["mix"])
    # a different random seed gives a different pattern
    assert _cli([*args[:-1], "6", "--out", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "cand-01" / "pattern.mid").read_bytes() != (c / "pattern.mid").read_bytes()


def test_generate_onsets_api_and_beam(model_file):
    from breakgan.drums import generate_onsets

    a = generate_onsets(seed_pattern="kick: x...x...x...x...", model=model_file, bars=3, tempo=90,
                        temperature=0.8, random_seed=2)
    b = generate_onsets(seed_pattern="kick: x...x...x...x...", model=model_file, bars=3, tempo=90,
                        temperature=0.8, random_seed=2)
    assert a == b and a["bars"] == 3 and a["duration"] == pytest.approx(8.0) and a["audio"] is None
    assert [o["step"] for o in a["parts"]["kick"][:4]] == [0, 4, 8, 12]
    assert all(0 <= o["time"] < a["duration"] and 1 <= o["velocity"] <= 127
               for hits in a["parts"].values() for o in hits)
    c = generate_onsets(seed_pattern="kick: x...x...x...x...", model=model_file, bars=3, tempo=90,
                        temperature=0.8, random_seed=3)
    assert c != a


def test_beam_search_scores_better_than_sampling(model_file):
    model, _ = load_model(model_file)
    fast = FastDrums(model)
    primer = np.array([1])

    def loglik(seq):
        with torch.inference_mode():
            st = fast.new_state(1)
            total = 0.0
            for t in range(len(seq) - 1):
                lp = torch.log_softmax(fast.step(st, torch.tensor([seq[t]])), 1)
                total += float(lp[0, seq[t + 1]])
        return total

    sampled = np.mean([loglik(fast.generate(primer, 32, seed=s)) for s in range(3)])
    beamed = loglik(fast.generate(primer, 32, seed=0, beam=BeamOptions(4, 4, 2)))
    assert beamed > sampled


@pytest.mark.parametrize("case", ["missing", "corrupt", "empty", "huge", "no_drums", "bad_soundfont",
                                  "odd_signature"])
def test_bad_inputs(tmp_path, model_file, capsys, case):
    seed = tmp_path / "seed.mid"
    extra = []
    if case == "missing":
        msg = "not found"
    elif case == "corrupt":
        seed.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x00\x60MTrk\xff\xff\xff\xffjunk")
        msg = "not a readable MIDI"
    elif case == "empty":
        seed.write_bytes(b"")
        msg = "empty"
    elif case == "huge":
        with open(seed, "wb") as f:
            f.truncate(17 * 2**20)
        msg = "too large"
    elif case == "no_drums":
        write_midi(seed, [(0, 60, 100), (96, 64, 100)], channel=0)
        msg = "no drums on channel 10.*--drum-channel"
    elif case == "bad_soundfont":
        write_midi(seed, [(0, 36, 100)])
        bad = tmp_path / "bad.sf2"
        bad.write_text("not a soundfont")
        extra = ["--soundfont", str(bad)]
        msg = "not a SoundFont"
    else:
        write_midi(seed, [(0, 36, 100)], sig=(7, 8))
        msg = "7/8"
    out = tmp_path / "out"
    rc = _cli(["drums", "--seed", str(seed), "--out", str(out), "--model", str(model_file), *extra])
    err = capsys.readouterr().err
    assert rc != 0
    import re

    assert re.search(msg, err), err
    assert err.strip().startswith("error:") and len(err.strip().splitlines()) == 1
    assert str(seed if case != "bad_soundfont" else tmp_path / "bad.sf2") in err
    assert not out.exists() and not list(tmp_path.glob(".out*"))  # nothing half-written


def test_drum_channel_option(tmp_path, model_file):
    seed = write_midi(tmp_path / "ch1.mid", [(0, 36, 100), (48, 38, 100)], channel=0,
                      extra_tracks=[(2, [(0, 60, 80)])])
    assert seed_from_midi(seed, drum_channel=1).pattern[2, 1] == 100
    with pytest.raises(BreakganError, match="channel\\(s\\) 1, 3"):
        seed_from_midi(seed)


def test_bad_model_file(tmp_path):
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"garbage")
    with pytest.raises(BreakganError, match="x.safetensors"):
        load_model(bad)


# ---- real material ------------------------------------------------------------------------------------

def test_shared_midi_seeds(shared_dir, model_file):
    files = sorted((shared_dir / "media").glob("*.mid"))
    if not files:
        pytest.skip("no MIDI in ../shared/media")
    from breakgan.drums import generate_onsets

    for f in files:
        s = seed_from_midi(f)
        assert s.pattern.any() and 20 <= s.tempo <= 300 and s.beats_per_bar >= 1
        o = generate_onsets(f, model=model_file, bars=2, random_seed=1)
        assert sum(len(v) for v in o["parts"].values()) > 0


def test_groove_corpus(shared_dir):
    root = shared_dir / "data" / "groove"
    if not (root / "info.csv").is_file():
        pytest.skip("no Groove MIDI Dataset in ../shared/data")
    from breakgan.drums.corpus import drum_tracks, gmd_splits
    from note_seq import midi_io

    splits = gmd_splits(root)
    assert set(splits.values()) >= {"train", "validation"}
    name = next(n for n, s in splits.items() if s == "train" and "beat_4-4" in n)
    seq = midi_io.midi_file_to_note_sequence(str(root / name))
    tracks = drum_tracks(seq, min_bars=4, max_steps=128)
    assert tracks and all(len(t) <= 128 for t in tracks)
    # Roland hi-hat edge pitches (22, 26) are counted in their hi-hat classes, not dropped
    pitches = {n.pitch for n in seq.notes}
    hits = hits_from_labels(np.concatenate(tracks))
    if 22 in pitches or 42 in pitches:
        assert hits[:, PARTS.index("hihat_closed")].any()
    s = seed_from_midi(root / name)
    assert s.pattern.any() and s.beats_per_bar == 4


def test_shipped_model_and_seeds():
    assert SHIPPED_MODEL.is_file(), "the drum model ships in assets/drums/"
    from breakgan.drums import generate_onsets

    seeds = sorted((Path(__file__).resolve().parents[1] / "assets" / "seeds").glob("*.mid"))
    assert len(seeds) == 3
    for f in seeds:
        o = generate_onsets(f, bars=4, random_seed=0)
        assert o == generate_onsets(f, bars=4, random_seed=0)
        assert sum(len(v) for v in o["parts"].values()) > 8
