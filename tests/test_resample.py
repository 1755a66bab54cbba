"""The binomial low-pass after StyleGAN's upsampling convolutions (nn/resample.py): a constant kept, the image
not moved, the checkerboard of a stride-2 transposed convolution gone, shapes at every resolution, and runs saved
before the filter still built and sampled as they were."""
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import ganforge
from ganforge import api, config
from ganforge.errors import UserError
from ganforge.models import MODELS
from ganforge.nn import resample
from ganforge.nn import stylegan as sg

OLD = Path(__file__).parent / "data" / "checkpoints_v1"
TINY = ["width=4", "max_width=16", "z_dim=8", "w_dim=8"]


def build(size, resample_setting="fir", channels=3, sets=TINY, seed=0):
    cfg = config.resolve("stylegan", MODELS["stylegan"].defaults, sets=[*sets, f"resample={resample_setting}"])
    info = {"name": "test", "channels": channels, "size": size, "native_size": size, "classes": []}
    torch.manual_seed(seed)
    return MODELS["stylegan"](cfg, info).eval()


def nyquist_peak(images: torch.Tensor) -> float:
    """The mean power of the (H/2, W/2), (0, W/2) and (H/2, 0) bins of the 2D FFT of each image minus its mean,
    over the mean power of all bins: about 1 for white noise, far below for smooth images, far above with a
    period-2 checkerboard."""
    x = images.double()
    power = torch.fft.fft2(x - x.mean(dim=(-2, -1), keepdim=True)).abs().square()
    h, w = x.shape[-2:]
    peak = (power[..., h // 2, w // 2] + power[..., 0, w // 2] + power[..., h // 2, 0]) / 3
    return float((peak / power.mean(dim=(-2, -1))).mean())


# --- the filter ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("gain", [1.0, 4.0])
def test_a_constant_stays_constant_away_from_the_borders(gain):
    """DC gain: the filter's gain, whatever the channels."""
    out = resample.Blur(gain)(torch.full((2, 5, 16, 16), 0.7))
    assert out.shape == (2, 5, 16, 16)
    assert torch.allclose(out[..., 1:-1, 1:-1], torch.full((2, 5, 14, 14), 0.7 * gain), atol=1e-6)
    assert torch.allclose(out[..., 0, 0], torch.full((2, 5), 0.7 * gain * 9 / 16), atol=1e-6)  # zero padding


def test_the_filter_does_not_move_the_image():
    """Mirroring the input and the kernel mirrors the upsampled output: no half-pixel shift (a 4-tap filter after
    the 4 x 4 kernel would make one)."""
    x = torch.randn(2, 3, 12, 12)
    assert torch.allclose(resample.Blur()(x.flip(-1, -2)), resample.Blur()(x).flip(-1, -2), atol=1e-6)
    weight, styles = torch.randn(4, 3, 4, 4), torch.rand(2, 3) + 0.5
    up = lambda x, w: sg.modulated_conv2d(x, w, styles, up=True, fir=resample.Blur(gain=4))  # noqa: E731
    assert torch.allclose(up(x.flip(-1, -2), weight.flip(-1, -2)), up(x, weight).flip(-1, -2), atol=1e-5)


def test_the_filter_is_a_buffer_that_checkpoints_do_not_hold():
    fir, plain = build(32, "fir"), build(32, "none")
    assert any(isinstance(m, resample.Blur) for m in fir.modules())
    assert not any(isinstance(m, resample.Blur) for m in plain.modules())
    for net in ("G", "D"):
        assert list(getattr(fir, net).state_dict()) == list(getattr(plain, net).state_dict())
        assert getattr(fir, net).load_state_dict(getattr(plain, net).state_dict())  # strict: nothing missing


# --- the checkerboard ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fir", [True, False])
def test_the_upsampling_layer_turns_a_constant_into_a_constant_only_with_the_filter(fir):
    """A constant through a 4 x 4 stride-2 transposed convolution comes out with a period of 2 (Odena et al.
    2016); with the filter after it, a constant, at the DC gain of the same kernel at stride 1."""
    torch.manual_seed(0)
    x, weight, styles = torch.full((1, 8, 8, 8), 0.5), torch.randn(6, 8, 4, 4), torch.ones(1, 8)
    out = sg.modulated_conv2d(x, weight, styles, demodulate=False, up=True, fir=resample.Blur(gain=4) if fir else None)
    inner = out[0, :, 2:-2, 2:-2]  # (6, 12, 12): away from the zero padding
    spread = (inner - inner.mean(dim=(1, 2), keepdim=True)).abs().amax() / inner.abs().mean()
    if fir:
        stride1 = F.conv2d(x, weight / (8 * 16) ** 0.5)[0, :, 0, 0]  # the kernel's DC gain at stride 1
        assert spread < 1e-5 and torch.allclose(inner.mean(dim=(1, 2)), stride1, atol=1e-5)
    else:
        assert spread > 0.1  # the checkerboard this catches: not constant, but of period 2
        assert torch.allclose(inner[:, :-2, :-2], inner[:, 2:, 2:], atol=1e-5)


@pytest.mark.parametrize("resample_setting,checkerboard", [("fir", False), ("none", True)])
@pytest.mark.parametrize("size", [32, 64])
def test_a_fresh_generators_images_have_no_checkerboard_with_the_filter(size, resample_setting, checkerboard):
    """The power at the Nyquist frequency of a freshly built G's images (default widths): tens of times that of
    white noise without the filter, a fraction of it with."""
    peaks = []
    for seed in range(3):
        model = build(size, resample_setting, sets=(), seed=seed)
        with torch.no_grad():
            peaks.append(nyquist_peak(model.sample(8, generator=torch.Generator().manual_seed(1))))
    if checkerboard:
        assert min(peaks) > 5, peaks
    else:
        assert max(peaks) < 1, peaks


@pytest.mark.parametrize("size", [32, 64, 128, 256])
def test_shapes_at_every_resolution(size):
    model = build(size, "fir", sets=["width=2", "max_width=8", "z_dim=8", "w_dim=8"])
    assert sum(isinstance(m, resample.Blur) for m in model.G.modules()) == len(sg.resolutions(size)) - 1  # 8 px .. size
    with torch.no_grad():
        x = model.sample(2)
        assert x.shape == (2, 3, size, size) and model.D(x).shape == (2,)
    model.train()
    fake, _ = model.fake_batch(2, "cpu")
    model.D(fake).sum().backward()  # the filters pass gradients through
    assert all(p.grad is not None for p in model.G.synthesis.parameters())


# --- settings and runs saved before the filters ---------------------------------------------------------

def test_new_runs_filter_above_32_px_and_a_bad_setting_is_one_line():
    """Digits keep the unfiltered network they were tuned with; from 33 px the recipe filters."""
    assert MODELS["stylegan"].defaults["resample"] == "none"
    for size, expected in ((28, "none"), (32, "none"), (64, "fir"), (256, "fir")):
        image = {"size": size, "channels": 3, "count": 1000}
        assert api.resolve_config("stylegan", image=image).resample == expected, size
    with pytest.raises(UserError, match="resample must be fir or none"):
        build(32, "bicubic")


def test_an_old_run_loads_unfiltered_and_samples_what_it_sampled():
    """checkpoints_v1/stylegan was written before the setting existed: it keeps its networks and its images
    (figures recorded from the code that wrote it)."""
    g = ganforge.load(OLD / "stylegan")
    assert g.cfg.resample == "none"
    assert not any(isinstance(m, resample.Blur) for m in g.model.modules())
    out = g.sample(2, seed=1).double()
    assert abs(float(out.sum()) - -212.41338998597348) < 1e-3 and abs(float(out.abs().sum()) - 712.4363779099076) < 1e-3
    assert torch.allclose(out[0, 0, 10, 10:16].float(), torch.tensor(
        [0.060635149478912354, 0.29253458976745605, -0.549063503742218, 0.019865425303578377, 0.3320940434932709, 0.3554089367389679]), atol=1e-5)


def test_an_old_run_resumes_unfiltered(tmp_path):
    run = tmp_path / "stylegan"
    shutil.copytree(OLD / "stylegan", run)
    assert api.resolve_config("stylegan", out=str(run), resume=True).resample == "none"
    assert api.resolve_config("stylegan", out=str(run), resume=True, sets=["resample=fir"]).resample == "fir"
    colour = {"size": 64, "channels": 3, "count": 1000}
    assert api.resolve_config("stylegan", out=str(run), resume=True, image=colour).resample == "none"  # saved wins
    assert api.resolve_config("stylegan", out=str(tmp_path / "new"), image=colour).resample == "fir"
