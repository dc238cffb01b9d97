"""Bad input to ingest, train and metrics: one line naming the option or file, nothing touched."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from badinput import expect_clean_error, run_cli
from conftest import ffmpeg

GENERATOR = Path(__file__).resolve().parents[1] / "assets" / "demo" / "generator.safetensors"


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-ingest")
    clip = root / "clip.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-t", "1.5", "-pix_fmt", "yuv420p", str(clip))
    dataset = root / "ds"
    res = run_cli(["ingest", clip, "--out", dataset, "--size", "8", "--fps", "4"])
    assert res.code == 0, res.err
    return root, clip, dataset


@pytest.mark.parametrize("option,value", [
    ("--fps", "nan"), ("--fps", "inf"), ("--fps", "-1"), ("--start", "nan"), ("--duration", "inf"),
    ("--start", "1e12"), ("--min-sharpness", "nan"), ("--still-motion", "nan"), ("--still-share", "5"),
    ("--dup-distance", "999"), ("--crop", "bogus"), ("--size", "3"), ("--size", "99999"), ("--max-frames", "-1"),
    ("--follow-seconds", "inf"), ("--start", "1000"),  # past the clip's end: said so, not "no frames decoded"
])
def test_ingest_options(material, tmp_path, option, value):
    root, clip, _ = material
    expect_clean_error(["ingest", clip, "--out", tmp_path / "new", option, value], names=option,
                       watch=[root, tmp_path])
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("damage", ["record-bytes", "record-list", "record-nested", "manifest-bytes",
                                    "manifest-columns", "manifest-escape"])
def test_ingest_into_a_damaged_dataset(material, tmp_path, damage):
    root, clip, dataset = material
    ds = tmp_path / "ds"
    shutil.copytree(dataset, ds)
    target = ds / ("breakgan.json" if damage.startswith("record") else "manifest.csv")
    if damage.endswith("bytes"):
        target.write_bytes(os.urandom(512))
    elif damage == "record-list":
        target.write_text("[1, 2, 3]")
    elif damage == "record-nested":
        target.write_text("[" * 100_000 + "]" * 100_000)
    elif damage == "manifest-columns":
        target.write_text("a,b\n1,2\n")
    elif damage == "manifest-escape":
        text = target.read_text().splitlines()
        header = text[0].split(",")
        row = text[1].split(",")
        row[header.index("file")] = "../../../etc/passwd"
        target.write_text("\n".join([text[0], ",".join(row), *text[2:]]) + "\n")
    expect_clean_error(["ingest", clip, "--out", ds, "--size", "8", "--fps", "3"], names=str(target.name),
                       watch=[tmp_path, root])


def test_ingest_out_must_be_a_dataset_or_new(material, tmp_path):
    root, clip, _ = material
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    expect_clean_error(["ingest", clip, "--out", foreign, "--size", "8"], names=str(foreign), watch=[tmp_path])
    a_file = tmp_path / "file.txt"
    a_file.write_text("keep me")
    expect_clean_error(["ingest", clip, "--out", a_file, "--size", "8"], names=str(a_file), watch=[tmp_path])


@pytest.mark.parametrize("argv_tail,names", [
    (["--kimg", "nan"], "--kimg"), (["--stable-kimg", "inf"], "--stable-kimg"), (["--lr", "nan"], "--lr"),
    (["--resolution", "3"], "--resolution"), (["--latent-size", str(2 ** 40)], "--latent-size"),
    (["--fmap-max", str(2 ** 40)], "--fmap-max"), (["--augment", "nan"], "--augment"),
    (["--snapshot-kimg", "nan"], "--snapshot-kimg"), (["--batch", "0"], "--batch"), (["--seed", "-5"], "--seed"),
    (["--fmap-min", "100", "--fmap-max", "10"], "--fmap-min"), (["--gp-lambda", "-5"], "--gp-lambda"),
    (["--gp-lambda", "nan"], "--gp-lambda"), (["--r1-gamma", "-1", "--loss", "logistic"], "--r1-gamma"),
    (["--r1-gamma", "inf", "--loss", "logistic"], "--r1-gamma"),
])
def test_train_options(material, tmp_path, argv_tail, names):
    root, _, dataset = material
    expect_clean_error(["train", dataset, "--out", tmp_path / "run", "--device", "cpu", *argv_tail], names=names,
                       watch=[root, tmp_path])


def test_train_refuses_a_foreign_out_and_bad_datasets(material, tmp_path):
    root, clip, dataset = material
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    expect_clean_error(["train", dataset, "--out", foreign, "--device", "cpu"], names=str(foreign),
                       watch=[tmp_path, root])
    expect_clean_error(["train", dataset, "--out", dataset, "--device", "cpu"], names=str(dataset),
                       watch=[tmp_path, root])
    expect_clean_error(["train", clip, "--out", tmp_path / "run", "--device", "cpu"], names=str(clip),
                       watch=[tmp_path, root])
    broken = tmp_path / "broken"
    shutil.copytree(dataset, broken)
    (broken / "breakgan.json").write_bytes(os.urandom(300))
    expect_clean_error(["train", broken, "--out", tmp_path / "run", "--device", "cpu"], names="breakgan.json",
                       watch=[tmp_path, root])


def test_metrics_json_never_overwrites_a_users_file(material, tmp_path):
    root, _, dataset = material
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": true}')
    expect_clean_error(["metrics", GENERATOR, "--dataset", dataset, "--num", "2", "--json", notes],
                       names="--json", watch=[tmp_path, root])


def test_metrics_json_under_a_file_fails_before_computing(material, tmp_path):
    root, _, dataset = material
    (tmp_path / "notes.txt").write_text("keep me")
    res = expect_clean_error(["metrics", GENERATOR, "--dataset", dataset, "--num", "2", "--json",
                              tmp_path / "notes.txt" / "sub" / "m.json"], names="--json", watch=[tmp_path, root])
    assert "notes.txt is not a folder" in res.err and "SWD" not in res.out, res.err


def test_metrics_json_refusal_leaves_no_new_folders(material, tmp_path):
    """The --json folders are made only once the numbers are in: a later bad input leaves nothing behind."""
    root, _, dataset = material
    expect_clean_error(["metrics", GENERATOR, "--dataset", tmp_path / "nope", "--num", "2", "--json",
                        tmp_path / "new" / "m.json"], names="nope", watch=[root])
    assert not (tmp_path / "new").exists()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record=st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                                        max_size=4),
                           max_leaves=12))
def test_train_reads_any_dataset_record_cleanly(material, tmp_path_factory, record):
    """Whatever a dataset's breakgan.json holds, train either starts or refuses in one line."""
    root, _, dataset = material
    work = tmp_path_factory.mktemp("rec")
    ds = work / "ds"
    shutil.copytree(dataset, ds)
    (ds / "breakgan.json").write_text(json.dumps(record))
    # --kimg 0.001 with no snapshots: if the record is somehow accepted, training ends at once
    res = run_cli(["train", ds, "--out", work / "run", "--device", "cpu", "--kimg", "0.001", "--metric-images", "0",
                   "--resolution", "4"])
    assert "Traceback" not in res.err and "internal error" not in res.err, res.err
    if res.code != 0:
        assert len(res.err_lines) == 1, res.err


@pytest.mark.parametrize("kind", ["device", "text", "missing"])
def test_ingest_of_one_bad_clip_is_one_line(tmp_path, kind):
    clip = {"device": Path("/dev/null"), "missing": tmp_path / "nope.mp4"}.get(kind, tmp_path / "notes.mp4")
    if kind == "text":
        clip.write_text("not a video")
    expect_clean_error(["ingest", clip, "--out", tmp_path / "ds"], names=str(clip), watch=[tmp_path])
    assert not (tmp_path / "ds").exists()
