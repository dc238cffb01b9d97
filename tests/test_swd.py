"""SWD (the PGGAN paper's metric): sanity on sets with known relations, determinism, the pyramid itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from breakgan.gan.swd import laplacian_level, level_descriptors, pyramid_resolutions, swd


def textures(n: int, res: int, seed: int, max_freq: float = 12.0) -> np.ndarray:
    """uint8 (n, 3, res, res): random sums of oriented sinusoids plus pixel noise (edges at all scales)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:res, 0:res] / res
    out = np.empty((n, 3, res, res), np.float64)
    for i in range(n):
        img = np.zeros((3, res, res))
        for _ in range(4):
            fx, fy = rng.uniform(-max_freq, max_freq, 2)
            wave = np.sin(2 * np.pi * (fx * xx + fy * yy) + rng.uniform(0, 2 * np.pi))
            img += rng.uniform(0.2, 1.0, (3, 1, 1)) * wave
        out[i] = img + rng.normal(0, 0.3, img.shape)
    return np.clip(127.5 + 45 * out, 0, 255).astype(np.uint8)


def box_blur(images: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(images).float()
    x = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return x.round().clamp(0, 255).to(torch.uint8).numpy()


@pytest.fixture(scope="module")
def sets():
    return textures(64, 32, seed=1), textures(64, 32, seed=2)


def test_levels_go_down_to_16_px():
    assert pyramid_resolutions(256) == [256, 128, 64, 32, 16]
    assert pyramid_resolutions(16) == [16]
    assert pyramid_resolutions(8) == [8]


def test_set_against_itself_is_zero(sets):
    a, _ = sets
    result = swd(a, a.copy(), seed=3)
    assert set(result) == {32, 16, "mean"}
    assert all(v == pytest.approx(0.0, abs=1e-9) for v in result.values())


def test_blurred_or_shifted_set_is_clearly_farther_than_the_real_floor(sets):
    a, b = sets  # b: a disjoint set from the same distribution, so swd(a, b) is the noise floor
    floor = swd(a, b)
    blurred = swd(a, box_blur(b))
    shifted = swd(a, textures(64, 32, seed=2, max_freq=3.0))  # same recipe, frequencies shifted down
    assert floor["mean"] > 0
    assert blurred[32] > 2 * floor[32]  # blur removes the fine band
    assert blurred["mean"] > 1.6 * floor["mean"]
    assert shifted["mean"] > 1.6 * floor["mean"]
    assert blurred["mean"] == pytest.approx(np.mean([blurred[32], blurred[16]]))


def test_same_seed_same_result_and_input_types_agree(sets):
    a, b = sets
    first = swd(a, b, seed=7)
    assert swd(a, b, seed=7) == first
    assert swd(torch.from_numpy(a), torch.from_numpy(b), seed=7, batch_size=5) == pytest.approx(first, rel=1e-6)
    other_seed = swd(a, b, seed=8)
    assert other_seed != first
    assert other_seed["mean"] == pytest.approx(first["mean"], rel=0.5)  # same quantity, other random draws


def test_memory_mapped_input(sets, tmp_path):
    a, b = sets
    np.save(tmp_path / "a.npy", a)
    mm = np.load(tmp_path / "a.npy", mmap_mode="r")
    assert swd(mm, b, seed=1) == swd(a, b, seed=1)


def _reference_pyramid(images: np.ndarray, levels: int) -> list[np.ndarray]:
    """Independent Laplacian pyramid with scipy (mirror borders), as the PGGAN reference builds it."""
    import scipy.ndimage

    k = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256.0

    def blur(x):
        return scipy.ndimage.convolve(x, k[None, None], mode="mirror")

    def up(x):
        z = np.zeros((*x.shape[:2], 2 * x.shape[2], 2 * x.shape[3]), x.dtype)
        z[:, :, ::2, ::2] = x
        return blur(z) * 4

    pyr = [images.astype(np.float32)]
    for _ in range(1, levels):
        pyr.append(blur(pyr[-1])[:, :, ::2, ::2])
        pyr[-2] = pyr[-2] - up(pyr[-1])
    return pyr


def test_laplacian_pyramid_matches_reference():
    x = textures(3, 64, seed=5)
    ref = _reference_pyramid(x, 3)
    for level in range(3):
        ours = laplacian_level(torch.from_numpy(x), level, 3).numpy()
        np.testing.assert_allclose(ours, ref[level], atol=1e-3)
    # the band-pass levels plus the residual rebuild the image
    rebuilt = ref[2]
    for level in (1, 0):
        rebuilt = ref[level] + _upsample(rebuilt)
    np.testing.assert_allclose(rebuilt, x.astype(np.float32), atol=1e-3)


def _upsample(x):
    from breakgan.gan.swd import _pyr_up

    return _pyr_up(torch.from_numpy(np.ascontiguousarray(x))).numpy()


def test_descriptors_are_windows_inside_the_image_normalised_per_channel():
    n, res, per = 6, 16, 64
    x = textures(n, res, seed=4)
    raw = level_descriptors(x, 0, 1, patches_per_image=per, generator=torch.Generator().manual_seed(0),
                            normalise=False)
    d = level_descriptors(x, 0, 1, patches_per_image=per, generator=torch.Generator().manual_seed(0))
    assert d.shape == raw.shape == (n * per, 3 * 7 * 7)
    # a one-level pyramid is the image itself: each raw descriptor is one of its image's 7x7 windows
    # lying fully inside (unfold lists exactly those)
    windows = torch.from_numpy(x).float().unfold(2, 7, 1).unfold(3, 7, 1)  # (n, 3, 10, 10, 7, 7)
    windows = windows.permute(0, 2, 3, 1, 4, 5).reshape(n, -1, 147)
    for i in range(n):
        dist = torch.cdist(raw[i * per:(i + 1) * per], windows[i])
        assert dist.min(dim=1).values.max() == 0
    assert len(torch.unique(raw, dim=0)) > per  # positions vary
    # normalised: zero mean, unit (population) std per colour channel over the whole set
    per_channel = d.reshape(-1, 3, 49)
    np.testing.assert_allclose(per_channel.mean(dim=(0, 2)).numpy(), 0, atol=1e-4)
    np.testing.assert_allclose(per_channel.std(dim=(0, 2), correction=0).numpy(), 1, atol=1e-4)


def test_bad_inputs_raise():
    a = textures(4, 16, seed=0)
    with pytest.raises(ValueError, match="differ"):
        swd(a, a[:3])
    with pytest.raises(ValueError, match="uint8"):
        swd(a.astype(np.float32), a.astype(np.float32))
    with pytest.raises(ValueError, match="smaller"):
        swd(a[:, :, :4, :4], a[:, :, :4, :4])
