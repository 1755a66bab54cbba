"""`ganforge explore`: style-mixing grids, interpolation strips and animated walks from real trained runs."""

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge import cli
from ganforge.errors import UserError
from ganforge.explore import Explorer, slerp
from ganforge.explore.command import parse_seeds
from ganforge.imaging.grid import make_grid

from conftest import make_trainer

PAD = 2  # make_grid's padding


@pytest.fixture(scope="module")
def stylegan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "stylegan"
    make_trainer("stylegan", out, sets=["width=8", "max_width=16", "z_dim=16", "w_dim=16", "ema.beta=0.9"], steps=6).fit()
    return out


@pytest.fixture(scope="module")
def explorer(stylegan_run):
    return Explorer(ganforge.load(stylegan_run))


def row_of(images: torch.Tensor) -> torch.Tensor:
    return make_grid(images, nrow=images.shape[0])


def same_pixels(a: torch.Tensor, b: torch.Tensor) -> bool:
    """uint8 images equal up to rounding (a batch's size changes the last float bits of a convolution)."""
    return a.shape == b.shape and int((a.int() - b.int()).abs().max()) <= 1


def cell(grid: torch.Tensor, row: int, col: int, side: int = 28) -> torch.Tensor:
    """The image at (row, col) of a make_grid picture (C, H, W)."""
    top, left = PAD + row * (side + PAD), PAD + col * (side + PAD)
    return grid[:, top : top + side, left : left + side]


def test_slerp_keeps_the_ends_and_the_sphere():
    torch.manual_seed(0)
    a, b = torch.randn(5, 16), torch.randn(5, 16)
    b = b / b.norm(dim=1, keepdim=True) * a.norm(dim=1, keepdim=True)  # equal norms
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-5) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-5)
    mid = slerp(a, b, 0.5)
    assert torch.allclose(mid.norm(dim=1), a.norm(dim=1), atol=1e-4)  # on the sphere, where lerp would cut inside
    assert (torch.lerp(a, b, 0.5).norm(dim=1) < a.norm(dim=1)).all()
    angle = lambda u, v: torch.acos((u * v).sum(1) / (u.norm(dim=1) * v.norm(dim=1)))  # noqa: E731
    assert torch.allclose(angle(a, mid), angle(mid, b), atol=1e-4)  # equal angular steps
    assert torch.allclose(slerp(a, 2 * a, 0.5), 1.5 * a)  # parallel: linear


def test_a_seed_is_the_first_latent_of_sample_with_that_seed(explorer, stylegan_run):
    image = explorer.render(explorer.latents([7]))
    assert torch.allclose(image, ganforge.load(stylegan_run).sample(3, seed=7)[:1], atol=1e-5)


def test_mixing_grid_layout(explorer):
    rows, cols = 2, 3
    grid = explorer.mixing_grid(rows, cols, seed=10)
    side = 28 + PAD
    assert grid.shape == (1, PAD + (1 + 3 * rows) * side, PAD + (cols + 1) * side)
    z_a, z_b = explorer.latents([10, 11]), explorer.latents([12, 13, 14])
    a, b = row_of(explorer.render(z_a)), row_of(explorer.render(z_b))
    assert cell(grid, 0, 0).eq(0).all()  # the blank corner
    for j in range(cols):
        assert same_pixels(cell(grid, 0, 1 + j), cell(b, 0, j))  # B across the top
    for k, level in enumerate(("coarse", "middle", "fine")):
        for i in range(rows):
            r = 1 + k * rows + i
            assert same_pixels(cell(grid, r, 0), cell(a, 0, i))  # A down the side
            mixed = row_of(explorer.model.mix(z_a[i : i + 1].expand(cols, -1), z_b, [level]))
            for j in range(cols):
                assert same_pixels(cell(grid, r, 1 + j), cell(mixed, 0, j))


@pytest.mark.parametrize("space", ["w", "z"])
def test_interpolation_strips_run_from_seed_to_seed(explorer, space):
    seeds, steps = [1, 2, 3], 5
    legs = explorer.path(seeds, steps, space)
    ends = explorer.render(explorer.latents(seeds))
    assert len(legs) == 2 and all(leg.shape == (steps, 1, 28, 28) for leg in legs)
    for k, leg in enumerate(legs):
        assert torch.allclose(leg[0], ends[k], atol=1e-5) and torch.allclose(leg[-1], ends[k + 1], atol=1e-5)
        assert not torch.allclose(leg[steps // 2], leg[0]) and not torch.allclose(leg[steps // 2], leg[-1])
    strip = explorer.strip(seeds, steps, space)
    assert strip.shape == (1, PAD + 2 * 30, PAD + steps * 30)


def test_w_interpolation_is_linear_in_w(explorer):
    z = explorer.latents([4, 5])
    w = explorer.model.styles(z)
    leg = explorer.path([4, 5], 3, "w")[0]
    assert torch.allclose(leg[1:2], explorer.model.synthesize(torch.lerp(w[:1], w[1:], 0.5)), atol=1e-5)


def test_truncated_paths_and_grids_use_the_truncated_images(explorer):
    z = explorer.latents([1, 2])
    leg = explorer.path([1, 2], 3, "z", psi=0.5)[0]
    assert torch.allclose(leg[0:1], explorer.model.truncate(z[:1], 0.5), atol=1e-5)
    grid = explorer.mixing_grid(1, 1, seed=1, psi=0.5, levels=["fine"])
    assert same_pixels(cell(grid, 1, 0), cell(row_of(explorer.model.truncate(z[:1], 0.5)), 0, 0))


def test_gif_is_a_closed_loop_of_frames(explorer, tmp_path):
    path = explorer.gif(tmp_path / "walk.gif", [0, 1, 2], steps=4, fps=10)
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 3 * 3  # three legs, each without its end
        assert gif.size == (140, 140)  # 28 px enlarged to at least 128
        assert gif.info["loop"] == 0 and gif.info["duration"] == 100
        gif.seek(0)
        first = np.asarray(gif.convert("L"))
    expected = explorer.render(explorer.latents([0]))[0, 0]
    expected = ((expected * 127.5 + 128).clamp(0, 255).to(torch.uint8)).repeat_interleave(5, 0).repeat_interleave(5, 1)
    assert np.abs(first.astype(int) - expected.numpy().astype(int)).max() <= 1


def test_gif_into_a_folder_is_a_user_error(explorer, tmp_path):
    (tmp_path / "walk.gif").mkdir()
    with pytest.raises(UserError, match="walk.gif"):
        explorer.gif(tmp_path / "walk.gif", [0, 1], steps=2)


def test_noise_models_interpolate_in_z_only(dcgan_run):
    explorer = Explorer(ganforge.load(dcgan_run))
    assert not explorer.has_styles
    legs = explorer.path([0, 1], 4, "z")
    assert legs[0].shape == (4, 1, 28, 28)
    with pytest.raises(UserError, match="no W space"):
        explorer.path([0, 1], 4, "w")
    with pytest.raises(UserError, match="no styles to mix"):
        explorer.mixing_grid()


def test_conditional_models_keep_one_class_along_the_path(cgan_run):
    explorer = Explorer(ganforge.load(cgan_run), label="3")
    z = explorer.latents([0, 1])
    leg = explorer.path([0, 1], 3, "z")[0]
    with torch.no_grad():
        assert torch.allclose(leg[0:1], explorer.model.G(z[:1], torch.tensor([3])), atol=1e-5)
    with pytest.raises(UserError, match="label"):
        Explorer(ganforge.load(cgan_run), label="12")


@pytest.mark.parametrize("call,needle", [
    (lambda e: e.path([0], 4), "at least two"),
    (lambda e: e.path([0, 1], 1), "--steps"),
    (lambda e: e.path([0, 1], 4, "x"), "--space"),
    (lambda e: e.mixing_grid(rows=0), "--rows"),
    (lambda e: e.mixing_grid(cols=99), "--cols"),
    (lambda e: e.mixing_grid(seed=-1), "--seed"),
])
def test_bad_requests_are_user_errors(explorer, call, needle):
    with pytest.raises(UserError, match=needle):
        call(explorer)


def test_parse_seeds():
    assert parse_seeds("0, 1,5") == [0, 1, 5]
    for bad in ("a,b", "1,-2"):
        with pytest.raises(UserError, match="--seeds"):
            parse_seeds(bad)


def run_cli(argv, capfd):
    code = cli.main([str(a) for a in argv])
    out, err = capfd.readouterr()
    return code, out, err.splitlines()


def test_explore_command_writes_each_picture(stylegan_run, tmp_path, capfd):
    for what, name in [("mix", "mix.png"), ("interpolate", "strip.png"), ("gif", "walk.gif")]:
        code, out, err = run_cli(["explore", stylegan_run, what, "--out", tmp_path / name, "--truncation", "0.8", "--steps", "3"], capfd)
        assert code == 0, err
        assert (tmp_path / name).stat().st_size > 0 and name in out
    with Image.open(tmp_path / "mix.png") as image:  # 28 px cells enlarged twice: B, then 3 rows per level
        assert image.size == (2 * (PAD + 6 * 30), 2 * (PAD + 10 * 30))


@pytest.mark.parametrize("args,needle", [
    (["gif", "--out", "walk.png"], ".gif"),
    (["mix", "--out", "m.png", "--levels", "coarse,huge"], "--levels"),
    (["mix", "--out", "m.png", "--truncation", "1.5"], "(0, 1]"),
    (["interpolate", "--out", "s.png", "--seeds", "3"], "at least two"),
])
def test_explore_command_bad_input_is_one_line(stylegan_run, tmp_path, capfd, args, needle):
    args = [str(tmp_path / a) if a.endswith((".png", ".gif")) else a for a in args]
    code, out, err = run_cli(["explore", stylegan_run, *args], capfd)
    assert code == 2 and out == "" and len(err) == 1 and needle in err[0] and "Traceback" not in err[0]


def test_explore_command_on_models_without_styles(dcgan_run, tmp_path, capfd):
    code, _, err = run_cli(["explore", dcgan_run, "mix", "--out", tmp_path / "m.png"], capfd)
    assert code == 2 and "no styles to mix" in err[0]
    code, _, err = run_cli(["explore", dcgan_run, "interpolate", "--out", tmp_path / "s.png", "--truncation", "0.5"], capfd)
    assert code == 2 and "no truncation trick" in err[0]
    code, _, _ = run_cli(["explore", dcgan_run, "interpolate", "--out", tmp_path / "s.png"], capfd)
    assert code == 0 and (tmp_path / "s.png").exists()  # Z slerp by default for a model without W
