"""Batched crop/flip and normalisation, checked pixel by pixel on hand-made images."""
import torch

from resnet_core.augment import CropFlip, crop_flip, draw_crop_flip, fit_normalizer


def numbered(n: int = 2, c: int = 3, h: int = 5, w: int = 6) -> torch.Tensor:
    """Images whose every pixel holds a distinct positive number, so each output pixel says where it came from."""
    return torch.arange(1, n * c * h * w + 1, dtype=torch.float32).reshape(n, c, h, w)


def draws(top, left, flip) -> CropFlip:
    return CropFlip(torch.tensor(top), torch.tensor(left), torch.tensor(flip))


def test_centre_crop_without_flip_is_identity():
    images = numbered()
    out = crop_flip(images, draws([2, 2], [2, 2], [False, False]), pad=2)
    assert out.shape == images.shape and out.dtype == images.dtype
    assert torch.equal(out, images)


def test_crop_offsets_shift_and_zero_fill():
    images = numbered(n=1)
    out = crop_flip(images, draws([0], [4], [False]), pad=2)  # 2 rows up, 2 columns right of the original
    expected = torch.zeros_like(images)
    expected[:, :, 2:, :4] = images[:, :, :3, 2:]
    assert torch.equal(out, expected)


def test_flip_mirrors_the_crop():
    images = numbered()
    out = crop_flip(images, draws([2, 1], [2, 3], [True, True]), pad=2)
    assert torch.equal(out[0], images[0].flip(-1))  # centre crop, flipped
    # image 1: crop one row up and one column right, then mirror the columns
    shifted = torch.zeros_like(images[1])
    shifted[:, 1:, :5] = images[1, :, :4, 1:]
    assert torch.equal(out[1], shifted.flip(-1))


def test_each_image_gets_its_own_draw():
    images = numbered(n=3)
    out = crop_flip(images, draws([2, 2, 2], [2, 2, 2], [False, True, False]), pad=2)
    assert torch.equal(out[0], images[0]) and torch.equal(out[2], images[2])
    assert torch.equal(out[1], images[1].flip(-1))


def test_channels_last_output_holds_the_same_values():
    images = numbered()
    d = draws([0, 4], [1, 3], [True, False])
    out = crop_flip(images, d, pad=2, memory_format=torch.channels_last)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out, crop_flip(images, d, pad=2))


def test_random_draws_cover_the_paper_range():
    g = torch.Generator().manual_seed(0)
    d = draw_crop_flip(4000, pad=4, generator=g)
    assert int(d.top.min()) == 0 and int(d.top.max()) == 8 and int(d.left.max()) == 8
    assert 0.45 < d.flip.float().mean() < 0.55
    out = crop_flip(torch.rand(4000, 3, 32, 32), d, pad=4)
    assert out.shape == (4000, 3, 32, 32)


def test_pixel_mean_normalizer_subtracts_the_mean_image():
    images = torch.randint(0, 256, (10, 3, 4, 4), dtype=torch.uint8)
    norm = fit_normalizer(images, "pixel_mean", chunk=3)
    out = norm(images)
    assert out.dtype == torch.float32
    assert torch.allclose(out.mean(0), torch.zeros(3, 4, 4), atol=1e-5)
    assert torch.allclose(out * 255, images.float() - images.float().mean(0), atol=1e-3)


def test_channel_normalizer_gives_zero_mean_unit_std_per_channel():
    images = torch.randint(0, 256, (50, 3, 8, 8), dtype=torch.uint8)
    out = fit_normalizer(images, "channel", chunk=7)(images)
    assert torch.allclose(out.mean((0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(out.std((0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4)
