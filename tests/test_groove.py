"""Drums that keep the groove (primer-guided sampling, density guards, per-seed candidate noise) and the
humanize model (velocities and micro-timing) through the library and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from badinput import expect_clean_error, run_cli

from breakgan.drums.encoding import labels_from_pattern
from breakgan.drums.generate import (PLAIN, Decoding, FastDrums, candidate_noise_seed, class_parts,
                                     density_caps, guided_distribution, make_decoding, nucleus,
                                     primer_step_distribution, time_positions)
from breakgan.drums.model import DrumsConfig, DrumsRNN
from breakgan.errors import BreakganError

BREAKBEAT = "assets/seeds/breakbeat.mid"
SNARE_ONLY = 1 << 1


def test_candidate_noise_depends_on_seed_content_candidate_and_random_seed():
    a = np.zeros((32, 9), np.uint8)
    a[::4, 0] = 100
    b = a.copy()
    b[4, 1] = 100
    seeds = {candidate_noise_seed(0, p, k) for p in (a, b) for k in (1, 2, 3)}
    assert len(seeds) == 6  # no two (primer, candidate) pairs share noise
    assert candidate_noise_seed(0, a, 1) == candidate_noise_seed(0, a.copy(), 1)  # content, not identity
    assert candidate_noise_seed(0, a, 1) != candidate_noise_seed(1, a, 1)
    assert candidate_noise_seed(2**63 - 1, a, 1) != candidate_noise_seed(2**31 - 1, a, 1)
    assert candidate_noise_seed(0, a, 1) != candidate_noise_seed(0, a[:16], 1)  # length counts
    assert 0 <= candidate_noise_seed(2**63 - 1, b, 99) < 2**63


def test_guided_distribution_pieces():
    primer = labels_from_pattern(np.eye(9, dtype=np.uint8)[[0, 2, 1, 2] * 8] * 100)  # kick hat snare hat
    table, covered = primer_step_distribution(primer, 16)
    assert covered.all() and np.allclose(table.sum(1), 1)
    assert table[0, 1] == 1.0 and table[1, 1 << 2] == 1.0
    p = np.full(512, 1 / 512)
    caps = density_caps(primer, 16, 1.5)
    assert caps[1] == 6 and caps[2] == 16  # snare: 1.5 x 4; hats are not capped
    q = guided_distribution(p, 0, np.zeros(9, int), table=table, covered=covered, caps=caps,
                            decoding=Decoding(1.0, 1.0, 1.5))
    assert q[1] == 1.0  # groove_keep 1: the primer's event at this position
    full = np.zeros(9, int)
    full[1] = 6
    q = guided_distribution(p, 3, full, table=table, covered=covered, caps=caps, decoding=Decoding(0.0, 1.0, 1.5))
    assert q[class_parts()[:, 1]].sum() == 0 and np.isclose(q.sum(), 1)
    q = guided_distribution(p, 3, np.zeros(9, int), table=table, covered=covered, caps=caps,
                            decoding=Decoding(0.0, 1.0, 1.5), need_time=True)
    assert np.isclose(q[class_parts()[:, [2, 3, 8]].any(1)].sum(), 1)
    n = nucleus(np.array([0.5, 0.3, 0.15, 0.05]), 0.8)
    assert np.allclose(n, [0.625, 0.375, 0, 0])


def snare_loving_model() -> FastDrums:
    """A tiny DrumsRNN whose next-step distribution is almost all 'snare alone'."""
    torch.manual_seed(0)
    model = DrumsRNN(DrumsConfig(layers=(8, 8, 8), attn_length=4))
    with torch.no_grad():
        model.fc_b.zero_()
        model.fc_b[SNARE_ONLY] = 12.0
    return FastDrums(model)


@pytest.mark.parametrize("cap", [1.5, 16.0])
def test_guard_never_samples_a_snare_roll(cap):
    fast = snare_loving_model()
    primer = np.zeros((32, 9), np.uint8)
    primer[[4, 12, 20, 28], 1] = 100  # 4 snares a bar
    primer[::2, 2] = 80
    labels = labels_from_pattern(primer)
    bars_seen = 0
    for seed in range(3):
        out = fast.generate(labels, 32 + 8 * 16, temperature=1.0, seed=seed,
                            decoding=Decoding(0.0, 1.0, cap), steps_per_bar=16)
        snares = class_parts()[out[32:]][:, 1].reshape(8, 16).sum(1)
        assert snares.max() <= 11
        bars_seen += len(snares)
    assert bars_seen == 24
    plain = fast.generate(labels, 32 + 8 * 16, temperature=1.0, seed=0, decoding=PLAIN)
    assert class_parts()[plain[32:]][:, 1].reshape(8, 16).sum(1).max() >= 12  # without the guard: rolls


def test_time_positions_follow_where_the_primer_keeps_time():
    bars = np.zeros((64, 9), np.uint8)
    bars[:16:2, 2] = 80  # hats on 8ths in bar 1 only
    assert time_positions(labels_from_pattern(bars[:32]), 16) is not None  # 1 bar of 2: still keeps time
    assert time_positions(labels_from_pattern(bars), 16) is None  # 1 bar of 4: this drummer mostly rests
    assert time_positions(labels_from_pattern(np.zeros((32, 9), np.uint8)), 16) is None
    assert np.flatnonzero(time_positions(labels_from_pattern(bars[:32]), 16)).tolist() == [8, 10, 12, 14]
    ride = np.zeros((32, 9), np.uint8)
    ride[[12, 28], 8] = 90  # a ride on beat 4 only
    assert np.flatnonzero(time_positions(labels_from_pattern(ride), 16)).tolist() == [12]
    early = np.zeros((32, 9), np.uint8)
    early[[0, 16], 2] = 90  # a hat on beat 1 only: its position is the deadline
    assert np.flatnonzero(time_positions(labels_from_pattern(early), 16)).tolist() == [0]


def test_missing_timekeeper_is_placed_where_the_primer_plays_it():
    torch.manual_seed(0)
    model = DrumsRNN(DrumsConfig(layers=(8, 8, 8), attn_length=4))
    with torch.no_grad():
        model.fc_b.zero_()
        model.fc_b[0] = 14.0  # almost always the empty step: it never keeps time on its own
    fast = FastDrums(model)
    primer = np.zeros((32, 9), np.uint8)
    primer[[4, 12, 20, 28], 1] = 100
    primer[12, 8] = 90  # one ride hit, on beat 4 of bar 1; bar 2 has none
    labels = labels_from_pattern(primer)
    out = fast.generate(labels, 32 + 8 * 16, temperature=1.0, seed=0, decoding=Decoding(0.0, 1.0, 1.5),
                        steps_per_bar=16)
    timed = class_parts()[out[32:]][:, [2, 3, 8]].any(1).reshape(8, 16)
    assert timed[:, 12].all() and timed.sum() == 8  # every bar gets it, and only at the primer's position
    off = fast.generate(labels, 32 + 8 * 16, temperature=1.0, seed=0,
                        decoding=Decoding(0.0, 1.0, 1.5, keep_time=False), steps_per_bar=16)
    assert not class_parts()[off[32:]][:, [2, 3, 8]].any()  # the rule, not the model, put it there


def test_guided_generation_is_deterministic():
    fast = snare_loving_model()
    labels = labels_from_pattern(np.eye(9, dtype=np.uint8)[[0, 2, 1, 2] * 8] * 100)
    runs = [fast.generate(labels, 96, seed=s, decoding=Decoding()) for s in (5, 5, 6)]
    assert np.array_equal(runs[0], runs[1])
    assert np.array_equal(runs[0][:32], labels)


def test_make_decoding_checks_values():
    assert make_decoding(0.3, 0.9, 0) == Decoding(0.3, 0.9, 0.0, False)
    for args, name in [((float("nan"), 0.9, 1.5), "--groove-keep"), ((0.5, 0.0, 1.5), "--top-p"),
                       ((0.5, 0.9, -1), "--density-cap"), ((1.5, 0.9, 1.5), "--groove-keep")]:
        with pytest.raises(BreakganError, match=name):
            make_decoding(*args)


# ---- humanize ---------------------------------------------------------------------------------------

def breakbeat_pattern():
    from breakgan.drums.seed import seed_from_midi

    return seed_from_midi(BREAKBEAT)


def test_humanize_shapes_ranges_and_determinism():
    from breakgan.drums.groove.apply import humanize
    from breakgan.drums.groove.model import MAX_OFFSET

    seed = breakbeat_pattern()
    pat = np.tile(seed.pattern, (2, 1))
    vel, off = humanize(pat, seed.tempo, 1.0, seed=3)
    assert vel.shape == pat.shape and off.shape == pat.shape and vel.dtype == np.uint8
    hits = pat > 0
    assert np.array_equal(vel > 0, hits)  # hits stay hits, rests stay rests
    assert vel[hits].min() >= 1 and np.abs(off).max() <= MAX_OFFSET and not off[~hits].any()
    assert len(np.unique(vel[hits])) > 5 and np.abs(off[hits]).mean() > 0.01
    again, off2 = humanize(pat, seed.tempo, 1.0, seed=3)
    assert np.array_equal(again, vel) and np.array_equal(off2, off)
    other, _ = humanize(pat, seed.tempo, 1.0, seed=4)
    assert not np.array_equal(other, vel)
    same, zero = humanize(pat, seed.tempo, 0.0, seed=3)
    assert np.array_equal(same, pat) and not zero.any()
    half, off_half = humanize(pat, seed.tempo, 0.5, seed=3)
    assert np.allclose(off_half, off / 2, atol=1e-6)


def onsets_of(folder):
    return json.loads((folder / "cand-01" / "onsets.json").read_text())


def test_drums_humanize_cli_follows_the_quantized_pattern(tmp_path):
    common = ["drums", "--seed", BREAKBEAT, "--bars", "3", "--sample-rate", "8000", "--random-seed", "7"]
    assert run_cli(common + ["--out", tmp_path / "q", "--humanize", "0"]).code == 0
    assert run_cli(common + ["--out", tmp_path / "h", "--humanize", "1"]).code == 0
    q, h = onsets_of(tmp_path / "q"), onsets_of(tmp_path / "h")
    dt = 60.0 / q["tempo"] / 4
    moved = 0
    for part, events in q["parts"].items():
        assert all(abs(e["time"] - e["step"] * dt) < 1e-5 for e in events)  # humanize 0: on the grid
        assert [e["step"] for e in events] == [e["step"] for e in h["parts"][part]]  # same hits
        moved += sum(abs(a["time"] - b["time"]) > 1e-4 for a, b in zip(events, h["parts"][part]))
    assert moved > 0
    record = json.loads((tmp_path / "h" / "breakgan.json").read_text())
    assert record["options"]["humanize"] == 1.0 and "groove_model" in record["inputs"]


def test_drums_groove_writes_a_drums_folder_with_dynamics(tmp_path):
    from breakgan.timeline import timeline_from_drums

    out = tmp_path / "g"
    res = run_cli(["drums", "groove", BREAKBEAT, "--out", out, "--sample-rate", "8000"])
    assert res.code == 0, res.err
    cand = out / "cand-01"
    for name in ("pattern.mid", "mix.wav", "onsets.json", "breakgan.json", "parts/snare.mid", "stems/kick.wav"):
        assert (cand / name).is_file(), name
    vels = [e["velocity"] for events in onsets_of(out)["parts"].values() for e in events]
    assert len(set(vels)) > 5
    timeline = timeline_from_drums(out)  # render and live read it, dynamics included
    snare = timeline.parts["snare"]
    assert timeline.duration > 0 and len(snare) > 2 and len(np.unique(snare[:, 1])) > 2
    grid = 60.0 / timeline.tempo / 4
    assert np.abs(snare[:, 0] / grid - np.round(snare[:, 0] / grid)).max() > 0.01  # off the grid


@pytest.mark.parametrize("value", ["nan", "-1", "5", "inf"])
def test_bad_humanize_amounts(tmp_path, value):
    expect_clean_error(["drums", "--seed", BREAKBEAT, "--out", tmp_path / "o", "--humanize", value],
                       names="--humanize", watch=[tmp_path])
    expect_clean_error(["drums", "groove", BREAKBEAT, "--out", tmp_path / "o", "--amount", value],
                       names="--amount", watch=[tmp_path])


@pytest.mark.parametrize("option,value", [("--groove-keep", "nan"), ("--groove-keep", "2"), ("--top-p", "0"),
                                          ("--density-cap", "-1")])
def test_bad_decoding_options(tmp_path, option, value):
    expect_clean_error(["drums", "--seed", BREAKBEAT, "--out", tmp_path / "o", option, value],
                       names=option, watch=[tmp_path])


def test_groove_on_a_non_midi_file(tmp_path):
    bad = tmp_path / "notes.mid"
    bad.write_text("this is not MIDI\n")
    expect_clean_error(["drums", "groove", bad, "--out", tmp_path / "o"], names=str(bad), watch=[tmp_path])
    model = tmp_path / "g.safetensors"
    model.write_bytes(b"\x00" * 64)
    expect_clean_error(["drums", "groove", BREAKBEAT, "--out", tmp_path / "o", "--groove-model", model],
                       names=str(model), watch=[tmp_path])


def test_pattern_profile_is_the_per_position_hit_rate_over_all_bars():
    from breakgan.drums.groove.model import PROFILE_SIZE, pattern_profile

    bar = np.zeros((16, 9), bool)
    bar[[0, 8], 0] = True  # kick on 1 and 3
    bar[::2, 2] = True  # closed hats on 8ths
    two = np.concatenate([bar, np.zeros_like(bar)])
    prof = pattern_profile(np.tile(bar, (5, 1))).reshape(16, 9)
    assert pattern_profile(bar).shape == (PROFILE_SIZE,)
    assert np.array_equal(prof, bar.astype(np.float32))  # repeating a bar does not change its profile
    assert np.allclose(pattern_profile(two).reshape(16, 9), bar / 2)  # hits in 1 of 2 bars: rate 0.5
    assert pattern_profile(bar[:10]).reshape(16, 9)[:10].sum() == bar[:10].sum()  # a partial bar counts as one


def test_groove_model_files_with_and_without_the_profile_input(tmp_path):
    """A profile model sees the whole pattern: a change in bar 8 changes bar 1's prediction, which a
    window-only model (as in v1 files, which still load) cannot do. An ensemble predicts its members' mean."""
    from safetensors.torch import save_file

    from breakgan.drums.groove.model import GrooveEnsemble, GrooveNet, load, predict, save

    pat = np.zeros((8 * 16, 9), bool)
    pat[::4, 0] = pat[4::8, 1] = pat[::2, 2] = True
    changed = pat.copy()
    changed[7 * 16:, 2] = False
    changed[7 * 16::2, 8] = True  # the last bar moves from hats to ride
    for profile in (False, True):
        torch.manual_seed(0)
        path = tmp_path / f"groove-{profile}.safetensors"
        save(GrooveNet(16, 1, 2, profile=profile), path, {"train_steps": 0})
        net, meta = load(path)
        assert net.profile is profile and meta["profile"] is profile and meta["members"] == 1
        v1, o1 = predict(net, pat, 110.0)
        v2, o2 = predict(net, changed, 110.0)
        assert v1.shape == pat.shape and np.isfinite(o1).all()
        assert np.array_equal(v1[:16], v2[:16]) is not profile

    torch.manual_seed(1)
    a, b = GrooveNet(16, 1, 2, profile=True), GrooveNet(16, 1, 2, profile=True)
    save(GrooveEnsemble([a, b]), tmp_path / "ens.safetensors", {})
    ens, meta = load(tmp_path / "ens.safetensors")
    assert meta["members"] == 2
    va, oa = predict(ens.members[0], pat, 95.0)
    vb, ob = predict(ens.members[1], pat, 95.0)
    v, o = predict(ens, pat, 95.0)
    assert np.allclose(o, (oa + ob) / 2, atol=1e-6) and not np.allclose(oa, ob)
    with pytest.raises(ValueError, match="window length"):
        GrooveEnsemble([a, GrooveNet(16, 1, 4, profile=True)])

    # members of other widths and depths: each architecture's mean counts once, whatever its member count
    c, d = GrooveNet(8, 2, 2, profile=True), GrooveNet(8, 2, 2, profile=True)
    mixed = GrooveEnsemble([a, b, GrooveNet(24, 1, 2, profile=True), c, d])
    save(mixed, tmp_path / "mixed.safetensors", {"hidden": 99})  # a stale record cannot name other widths
    back, meta = load(tmp_path / "mixed.safetensors")
    assert meta["hidden"] == [16, 16, 24, 8, 8] and meta["layers"] == [1, 1, 1, 2, 2] and meta["members"] == 5
    assert back.groups == [[0, 1], [2], [3, 4]]
    outs = [predict(m, pat, 95.0)[1] for m in back.members]
    expect = ((outs[0] + outs[1]) / 2 + outs[2] + (outs[3] + outs[4]) / 2) / 3
    assert np.allclose(predict(back, pat, 95.0)[1], expect, atol=1e-6)
    assert load(tmp_path / "ens.safetensors")[1]["hidden"] == 16  # one architecture: plain numbers, as before

    old = GrooveNet(16, 1, 2)  # a file from before profiles and ensembles: no prefix, no such keys
    save_file({k: v.half() for k, v in old.state_dict().items()}, str(tmp_path / "v1.safetensors"),
              metadata={"breakgan": json.dumps({"kind": "groove", "hidden": 16, "layers": 1, "window_bars": 2})})
    net, _ = load(tmp_path / "v1.safetensors")
    assert net.profile is False and len(net.members) == 1
    assert np.allclose(predict(net, pat, 110.0)[1], predict(old.half().float(), pat, 110.0)[1], atol=1e-5)


def fake_groove_dataset(root, files: int = 24, bars: int = 4):
    """A folder laid out like the Groove MIDI Dataset: info.csv and 4/4 drum takes at 100 BPM in which the
    snare lies back by a tenth of a step and accents follow the part, plus a little noise."""
    import pretty_midi

    rng = np.random.default_rng(0)
    step = 60.0 / 100.0 / 4
    lines = ["drummer,session,id,style,bpm,beat_type,time_signature,midi_filename,audio_filename,duration,split"]
    for i in range(files):
        name = f"drummer1/session1/{i}_funk_100_beat_4-4.mid"
        pm = pretty_midi.PrettyMIDI(initial_tempo=100.0)
        kit = pretty_midi.Instrument(0, is_drum=True)
        for s in range(16 * bars):
            for pitch, hit, late, loud in ((36, s % 8 == 0, 0.0, 110), (38, s % 8 == 4, 0.1, 100),
                                           (42, s % 2 == 0, 0.0, 60 + 30 * (s % 4 == 0))):
                if hit:
                    t = max(0.0, (s + late + rng.normal(0, 0.03)) * step)
                    kit.notes.append(pretty_midi.Note(int(loud + rng.integers(-5, 6)), pitch, t, t + 0.05))
        pm.instruments.append(kit)
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        pm.write(str(root / name))
        lines.append(f"drummer1,drummer1/session1,drummer1/session1/{i},funk,100,beat,4-4,{name},,"
                     f"{16 * bars * step:.2f},train")
    (root / "info.csv").write_text("\n".join(lines) + "\n")


def test_groove_training_holds_out_a_stable_eighth_and_ships_an_ensemble(tmp_path):
    from breakgan.drums.groove import train as T
    from breakgan.drums.groove.model import load, save

    fake_groove_dataset(tmp_path)
    perfs, held = T.holdout_split(T.load_split(tmp_path, "train"))
    assert held and len({p.name for p in perfs + held}) == 24  # a partition of the 24 takes
    assert [p.name for p in T.holdout_split(T.load_split(tmp_path, "train"))[1]] == [p.name for p in held]

    net, meta = T.train(str(tmp_path), 0.03, seed=5, members=2, holdout=True, hidden=8, window_bars=2,
                        log=lambda msg: None)
    assert meta["seeds"] == [5, 6] and len(meta["train_steps"]) == 2 and min(meta["train_steps"]) > 0
    figures = meta["holdout"]
    assert figures["files"] == len(held) and set(figures) >= {"ensemble", "member 0", "member 1"}
    assert all(np.isfinite(f["model"]["ms"]) for k, f in figures.items() if k != "files")
    save(net, tmp_path / "g.safetensors", meta)
    loaded, stored = load(tmp_path / "g.safetensors")
    assert len(loaded.members) == 2 and loaded.profile and stored["seeds"] == [5, 6]

    more, more_meta = T.train(str(tmp_path), 0.02, seed=7, add_to=(loaded, stored), hidden=8, window_bars=2,
                              drop_hits=0.3, log=lambda msg: None)
    assert len(more.members) == 3 and more_meta["seeds"] == [5, 6, 7] and len(more_meta["train_steps"]) == 3
    assert stored["drop_hits"] == 0.0 and more_meta["drop_hits"] == [0.0, 0.0, 0.3]  # each member's own setting
    assert more_meta["profile_bars"] == 0.0  # settings all members share stay one value
    assert more.members[0] is loaded.members[0]
    with pytest.raises(ValueError, match="overlap"):
        T.train(str(tmp_path), 0.01, seed=6, add_to=(loaded, stored), hidden=8, window_bars=2, log=lambda msg: None)
    with pytest.raises(ValueError, match="window length"):
        T.train(str(tmp_path), 0.01, seed=9, add_to=(loaded, stored), hidden=8, window_bars=4, log=lambda msg: None)
    wider, wider_meta = T.train(str(tmp_path), 0.0, seed=9, add_to=(more, more_meta), hidden=12, window_bars=2,
                                steps=3, log=lambda msg: None)  # another width joins as its own group
    assert [m.hidden for m in wider.members] == [8, 8, 8, 12] and wider.groups == [[0, 1, 2], [3]]
    assert wider_meta["steps"] == [0, 0, 0, 3] and wider_meta["drop_hits"] == [0.0, 0.0, 0.3, 0.0]


def test_training_profiles_come_from_random_parts_of_each_take(tmp_path):
    """--profile-bars: each window's profile is the hit rate over a random subset of at least that share of
    its own take's bars (so a network cannot name the take by its exact profile); 1.0 gives the whole take."""
    from breakgan.drums.groove import train as T
    from breakgan.drums.groove.model import bar_hits, pattern_profile

    rng = np.random.default_rng(0)
    take = np.zeros((16 * 10, 9), bool)
    take[np.arange(10) * 16 + np.arange(10), 0] = True  # bar i: one kick, at position i, so a profile names its bars
    other = rng.random((16 * 3, 9)) < 0.3
    bars = [bar_hits(take), bar_hits(other)]
    assert np.array_equal(bars[0].mean(0), pattern_profile(take))
    whole = T.subsampled_profiles(bars, np.array([0, 1]), 1.0, rng).numpy()
    assert np.array_equal(whole[0], pattern_profile(take)) and np.array_equal(whole[1], pattern_profile(other))
    sizes = set()
    for prof in T.subsampled_profiles(bars, np.zeros(200, np.int64), 0.3, rng).numpy():
        kicks = prof.reshape(16, 9)[:, 0]
        chosen = np.flatnonzero(kicks)
        assert prof.reshape(16, 9)[:, 1:].sum() == 0 and chosen.max() < 10
        assert np.allclose(kicks[chosen], 1 / len(chosen))  # the mean of len(chosen) distinct bars
        sizes.add(len(chosen))
    assert min(sizes) >= 3 and max(sizes) == 10 and len(sizes) >= 5

    fake_groove_dataset(tmp_path, files=8)
    net, meta = T.train(str(tmp_path), 0.02, seed=1, hidden=8, window_bars=2, profile_bars=0.5, log=lambda msg: None)
    assert meta["profile_bars"] == 0.5 and meta["train_steps"][0] > 0


def test_a_step_budget_trains_the_same_weights_on_any_machine(tmp_path):
    """--steps N: exactly N steps, the cosine schedule over them, and the same seed gives the same weights
    (a wall-clock budget gives fewer steps, and other weights, on a slower machine)."""
    from breakgan.drums.groove import train as T

    fake_groove_dataset(tmp_path, files=8)
    runs = [T.train_member(str(tmp_path), 0.0, seed=3, hidden=8, window_bars=2, drop_hits=0.2, profile_bars=0.5,
                           steps=12, log=lambda msg: None) for _ in range(2)]
    (a, meta), (b, _) = runs
    assert meta["train_steps"] == 12 and meta["steps"] == 12
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    other, _ = T.train_member(str(tmp_path), 0.0, seed=4, hidden=8, window_bars=2, steps=12, log=lambda msg: None)
    assert not torch.equal(a.head.weight, other.head.weight)


@pytest.mark.parametrize("option, value", [("--steps", "-1"), ("--tempo-jitter", "0.5"), ("--tempo-jitter", "nan"),
                                           ("--drop-hits", "1"), ("--profile-bars", "-0.1"), ("--layers", "0"),
                                           ("--hidden", "0"), ("--window-bars", "0"), ("--window-bars", "65")])
def test_groove_training_options_are_checked_in_one_line(tmp_path, monkeypatch, capsys, option, value):
    from breakgan.drums.groove import train as T

    monkeypatch.setattr("sys.argv", ["train", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "g.st"),
                                     option, value])
    with pytest.raises(SystemExit) as e:
        T.main()
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]  # after argparse's usage, as any argparse tool
    assert e.value.code == 2 and len(lines) == 1 and option in lines[0] and value in lines[0]
    assert "Traceback" not in err
    assert not (tmp_path / "g.st").exists()


def test_a_groove_file_whose_record_claims_huge_networks_is_refused_before_they_are_built(tmp_path):
    from safetensors.torch import save_file

    from breakgan.drums.groove.model import MAX_MEMBERS, GrooveNet, load

    small = GrooveNet(8, 1, 2, profile=True)
    save_file({f"members.0.{k}": v.half() for k, v in small.state_dict().items()}, str(tmp_path / "forged.safetensors"),
              metadata={"breakgan": json.dumps({"kind": "groove", "hidden": [1024] * MAX_MEMBERS, "layers": 8,
                                                "window_bars": 2, "profile": True, "members": MAX_MEMBERS})})
    with pytest.raises(BreakganError, match="not a breakgan groove model"):
        load(tmp_path / "forged.safetensors")


def test_split_rows_reads_any_listed_split_and_names_a_missing_one(tmp_path):
    from breakgan.drums.groove.data import load_split, split_rows
    from breakgan.transcribe.synthesis import groove_files

    fake_groove_dataset(tmp_path, files=3, bars=1)
    info = tmp_path / "info.csv"
    lines = info.read_text().splitlines()
    info.write_text("\n".join([*lines[:2], lines[2].replace(",train", ",test"), lines[3]]) + "\n")
    assert [r["midi_filename"] for r in split_rows(tmp_path, "test")] == ["drummer1/session1/1_funk_100_beat_4-4.mid"]
    assert [g.split for g in groove_files(tmp_path, "test")] == ["test"]  # an evaluator's full copy
    assert len(load_split(tmp_path, "train")) == 2
    with pytest.raises(ValueError, match=r"no 4/4 files of the validation split \(this copy has: test, train\)"):
        split_rows(tmp_path, "validation")
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        split_rows(tmp_path, "dev")
    with pytest.raises(ValueError, match="info.csv: not found"):
        split_rows(tmp_path / "nowhere", "train")
