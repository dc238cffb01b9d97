"""Layouts (pure): grid shapes, tile rectangles, compositing; keyframe options."""

import json

import numpy as np
import pytest

from breakgan.errors import BreakganError
from breakgan.render.keys import parse_class_spec, parse_seed_spec, part_keys, read_favourites
from breakgan.render.layout import FOOTAGE, compose, grid_shape, make_layout
from breakgan.render.options import parse_size
from breakgan.render.video import preview_settings
from breakgan.trajectory import keyframes_from_seeds


def covers_without_overlap(layout):
    mask = np.zeros((layout.height, layout.width), int)
    for t in layout.tiles:
        mask[t.y:t.y + t.h, t.x:t.x + t.w] += 1
    return mask.max() == 1


@pytest.mark.parametrize("n,w,h,expect", [(1, 1280, 720, (1, 1)), (2, 1280, 720, (2, 1)), (4, 1280, 720, (2, 2)),
                                          (10, 1280, 720, (5, 2)), (9, 1280, 720, (3, 3)), (3, 720, 1280, (1, 3))])
def test_grid_shape(n, w, h, expect):
    assert grid_shape(n, w, h) == expect


def test_tiles_one_per_part_plus_footage_no_overlap():
    lay = make_layout("tiles", ("kick", "snare", "crash"), 640, 360, footage=True)
    assert [t.name for t in lay.tiles] == ["kick", "snare", "crash", FOOTAGE]
    assert covers_without_overlap(lay)
    assert sum(t.w * t.h for t in lay.tiles) == 640 * 360  # 2x2 fills the frame
    assert lay.parts == ("kick", "snare", "crash") and lay.has_footage


def test_solo_blend_pip():
    solo = make_layout("solo", ("kick", "snare"), 320, 180, footage=True, part="snare")
    assert [(t.name, t.w, t.h) for t in solo.tiles] == [("snare", 320, 180)]
    blend = make_layout("blend", ("kick",), 320, 180, footage=True)
    assert [t.name for t in blend.tiles] == [FOOTAGE, "kick"]
    with pytest.raises(BreakganError, match="footage"):
        make_layout("blend", ("kick",), 320, 180, footage=False)
    pip = make_layout("pip", ("kick", "snare"), 320, 180, footage=True)
    assert pip.tiles[0].name == FOOTAGE and pip.tiles[0].w == 320
    for t in pip.tiles[1:]:
        assert t.w == t.h == 45 and t.x + t.w <= 320 and t.y + t.h <= 180
    with pytest.raises(BreakganError, match="--layout"):
        make_layout("mosaic", ("kick",), 320, 180, footage=False)
    with pytest.raises(BreakganError, match="--part ride"):
        make_layout("solo", ("kick",), 320, 180, footage=False, part="ride")


def test_compose_places_tiles_and_blends():
    lay = make_layout("tiles", ("kick", "snare"), 8, 4, footage=False)
    frame = compose(lay, {"kick": np.full((4, 4, 3), 10, np.uint8), "snare": np.full((4, 4, 3), 200, np.uint8)})
    assert frame[:, :4].max() == 10 and frame[:, 4:].min() == 200
    blend = make_layout("blend", ("kick",), 4, 4, footage=True)
    imgs = {FOOTAGE: np.zeros((4, 4, 3), np.uint8), "kick": np.full((4, 4, 3), 200, np.uint8)}
    assert compose(blend, imgs, 0.25).mean() == pytest.approx(50, abs=1)
    assert compose(blend, imgs, 0.0).max() == 0


def test_seed_spec_and_keys():
    assert parse_seed_spec("kick=3,snare=7:8:9") == {"kick": [3], "snare": [7, 8, 9]}
    for bad in ("kick", "cowbell=3", "kick=x", "kick=-1", f"kick={2**63}", f"kick={2**70}", "kick=1.5",
                "kick=" + ":".join(["1"] * 1025), "kick=1,kick=2", "kick=１２"):
        with pytest.raises(BreakganError, match="--seeds"):
            parse_seed_spec(bad)
    assert parse_seed_spec(f"kick={2**63 - 1}") == {"kick": [2**63 - 1]}
    keys = part_keys(("kick", "snare", "ride"), 6, 4, seeds={"kick": [3], "snare": [7, 8]}, keyframe_seed=1)
    np.testing.assert_array_equal(keys["kick"], keyframes_from_seeds([3, 4, 5, 6], 6))
    assert keys["snare"].shape == (2, 6) and keys["ride"].shape == (4, 6)
    again = part_keys(("ride",), 6, 4, keyframe_seed=1)["ride"]
    np.testing.assert_array_equal(keys["ride"], again)
    assert not np.allclose(again, part_keys(("ride",), 6, 4, keyframe_seed=2)["ride"])
    assert parse_class_spec("kick=1,snare=b", ["a", "b"]) == {"kick": 1, "snare": 1}


def test_favourites_formats(tmp_path):
    (tmp_path / "fav.txt").write_text("# my picks\n3, 5\n9\n")
    np.testing.assert_array_equal(read_favourites(tmp_path / "fav.txt", 4), keyframes_from_seeds([3, 5, 9], 4))
    (tmp_path / "fav.json").write_text(json.dumps({"kick": [1, 2]}))
    assert read_favourites(tmp_path / "fav.json", 4)["kick"].shape == (2, 4)
    np.save(tmp_path / "fav.npy", np.ones((3, 4), np.float32))
    shared = read_favourites(tmp_path / "fav.npy", 4)
    keys = part_keys(("kick", "snare"), 4, favourites=np.arange(12, dtype=np.float32).reshape(3, 4))
    assert keys["snare"][0, 0] == 4.0 and keys["kick"][0, 0] == 0.0  # each part starts on its own favourite
    assert shared.shape == (3, 4)
    with pytest.raises(BreakganError, match=r"fav.npy: favourites latents have shape \(3, 4\)"):
        read_favourites(tmp_path / "fav.npy", 8)
    (tmp_path / "bad.txt").write_text("three\n")
    with pytest.raises(BreakganError, match="bad.txt"):
        read_favourites(tmp_path / "bad.txt", 4)


def test_size_and_preview():
    assert parse_size("1280x720") == (1280, 720)
    assert parse_size("4096x16") == (4096, 16)
    for bad in ("1280", "1281x720", "8x8", "99998x99998", "16x99998", "8192x8192", "4098x16", "-16x16",
                "16x16x16", "1e3x16", ""):
        with pytest.raises(BreakganError, match="--size"):
            parse_size(bad)
    assert preview_settings((1280, 720), 30) == ((320, 180), 15)
    assert preview_settings((200, 100), 12) == ((200, 100), 12)


def test_default_keys_are_blocks_of_seeds_per_part():
    """Without --seeds, part i (drum-part order) cycles through seeds N+i*K..N+i*K+K-1: no two parts
    share a keyframe, and `sample --seeds N-...` shows them all."""
    from breakgan.parts import PARTS

    keys = part_keys(("snare", "kick"), 6, 4, keyframe_seed=10)
    np.testing.assert_array_equal(keys["kick"], keyframes_from_seeds([10, 11, 12, 13], 6))
    first = 10 + 4 * PARTS.index("snare")
    np.testing.assert_array_equal(keys["snare"], keyframes_from_seeds(range(first, first + 4), 6))
