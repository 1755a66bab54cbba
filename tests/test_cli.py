"""The `ganforge` command: every bad input ends in one line on stderr and exit code 2, never a traceback.

The bad-input matrix runs `ganforge.cli.main` in this process (the function the console script calls),
counting the package's log records as the stderr lines they would print; a representative set also runs
as real `python -m ganforge` processes, started together so their start-up time overlaps.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from ganforge import cli
from ganforge.training import checkpoint

from conftest import FAST

QUIET_FAST = ["--quiet", "--set", *FAST]  # --set takes every KEY=VALUE after it: keep it last


def run_main(argv, capfd, caplog):
    """(exit code, stdout, stderr lines) of `ganforge ARGV` run in this process."""
    caplog.clear()
    code = cli.main([str(a) for a in argv])
    out, err = capfd.readouterr()
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("ganforge")]
    return code, out, err.splitlines() + logged


def assert_one_line_error(argv, capfd, caplog, *needles):
    code, out, lines = run_main(argv, capfd, caplog)
    assert code == 2, (code, lines)
    assert len(lines) == 1, lines
    assert lines[0].startswith("ganforge: error: ") and "Traceback" not in lines[0]
    assert out == ""
    for needle in needles:
        assert str(needle) in lines[0], (needle, lines[0])
    return lines[0]


def write_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture(scope="module")
def corrupt_run(dcgan_run, tmp_path_factory):
    """A run folder whose checkpoint tensors were cut short."""
    folder = tmp_path_factory.mktemp("corrupt") / "run" / "checkpoints"
    folder.mkdir(parents=True)
    for suffix in (".json", ".safetensors"):
        shutil.copy(dcgan_run / "checkpoints" / f"step_000200{suffix}", folder)
    tensors = folder / "step_000200.safetensors"
    tensors.write_bytes(tensors.read_bytes()[:1000])
    return folder.parent


# --- bad input to `ganforge train` ---------------------------------------------------------------------

def test_unknown_model(tmp_path, capfd, caplog):
    line = assert_one_line_error(["train", "dcgann", "--steps", 1, "--out", tmp_path], capfd, caplog, "dcgann")
    assert "did you mean 'dcgan'" in line


def test_unknown_dataset(tmp_path, capfd, caplog):
    assert_one_line_error(["train", "gan", "--data", "mnist6k", "--steps", 1, "--out", tmp_path / "r", *QUIET_FAST],
                          capfd, caplog, "mnist6k")


def test_missing_data_path(tmp_path, capfd, caplog):
    missing = tmp_path / "nowhere" / "digits"
    assert_one_line_error(["train", "gan", "--data", missing, "--steps", 1, "--out", tmp_path / "r", *QUIET_FAST],
                          capfd, caplog, missing)


def test_folder_without_readable_images(tmp_path, capfd, caplog):
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)  # a PNG signature, then nothing
    (folder / "b.jpg").write_bytes(b"")
    (folder / "c.png").write_text("not an image")
    assert_one_line_error(["train", "gan", "--data", folder, "--steps", 1, "--out", tmp_path / "r", *QUIET_FAST],
                          capfd, caplog, folder)


def test_conditional_model_on_unlabelled_folder(tmp_path, capfd, caplog):
    from ganforge.data.mnist5k import mnist5k

    images = mnist5k().images[:6, 0].numpy()
    for i, image in enumerate(images):
        write_png(tmp_path / "flat" / f"{i}.png", image)
    assert_one_line_error(["train", "cgan", "--data", tmp_path / "flat", "--steps", 1, "--out", tmp_path / "r", *QUIET_FAST],
                          capfd, caplog, "cgan", "label")


@pytest.mark.parametrize("setting,needle", [("optim.G.lrr=0.1", "did you mean 'optim.G.lr'"), ("steps=abc", "steps"),
                                            ("size=big", "size"), ("loss=wasserstien", "loss"), ("size=30", "30"),
                                            ("optim.D.name=adamw", "adamw"), ("augment.policy=zoom", "zoom")])
def test_bad_set(tmp_path, capfd, caplog, setting, needle):
    assert_one_line_error(["train", "dcgan", "--steps", 1, "--out", tmp_path / "r", "--quiet", "--set", *FAST, setting],
                          capfd, caplog, needle)


def test_broken_yaml(tmp_path, capfd, caplog):
    path = tmp_path / "settings.yaml"
    path.write_text("steps: 3\noptim:\n  G: {lr: 0.1\nseed: 1\n")
    assert_one_line_error(["train", "gan", "--config", path, "--out", tmp_path / "r", *QUIET_FAST], capfd, caplog, path, "line")


def test_missing_config_file(tmp_path, capfd, caplog):
    assert_one_line_error(["train", "gan", "--config", tmp_path / "no.yaml", "--out", tmp_path / "r"], capfd, caplog, "no.yaml")


@pytest.mark.parametrize("flags,needle", [(["--steps", -5], "steps"), (["--steps", 0], "steps"),
                                          (["--steps", 1, "--batch-size", 0], "batch_size"),
                                          (["--steps", "ten"], "--steps"), (["--stesp", 3], "--stesp"),
                                          (["--steps", 1, "--minutes", 1], "--minutes")])
def test_bad_numbers_and_flags(tmp_path, capfd, caplog, flags, needle):
    assert_one_line_error(["train", "gan", *flags, "--out", tmp_path / "r", *QUIET_FAST], capfd, caplog, needle)


def test_unwritable_out(tmp_path, capfd, caplog):
    blocker = tmp_path / "results.txt"
    blocker.write_text("a regular file where a folder would have to be")
    out = blocker / "run"
    assert_one_line_error(["train", "gan", "--steps", 1, "--out", out, *QUIET_FAST], capfd, caplog, out)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_gpu(tmp_path, capfd, caplog):
    assert_one_line_error(["train", "gan", "--steps", 1, "--device", "cuda", "--out", tmp_path / "r", *QUIET_FAST],
                          capfd, caplog, "cuda")


def test_resume_of_another_model(corrupt_run, dcgan_run, tmp_path, capfd, caplog):
    out = tmp_path / "copy"
    shutil.copytree(dcgan_run / "checkpoints", out / "checkpoints")
    assert_one_line_error(["train", "wgan", "--resume", "--steps", 200, "--out", out, *QUIET_FAST], capfd, caplog, out, "dcgan")


# --- bad input to `ganforge sample` ------------------------------------------------------------------

def test_sample_of_something_that_is_not_a_checkpoint(tmp_path, capfd, caplog):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    assert_one_line_error(["sample", notes], capfd, caplog, notes)
    assert_one_line_error(["sample", tmp_path], capfd, caplog, tmp_path)
    assert_one_line_error(["sample", tmp_path / "gone"], capfd, caplog, "gone")


def test_sample_of_a_corrupt_checkpoint(corrupt_run, capfd, caplog):
    assert_one_line_error(["sample", corrupt_run, "--n", 4], capfd, caplog, "step_000200.safetensors")


@pytest.mark.parametrize("flags,needle", [(["--label", 12], "12"), (["--labels", "1,seven"], "seven"),
                                          (["--label", -1], "-1"), (["--n", 0], "--n")])
def test_sample_bad_labels_and_counts(cgan_run, tmp_path, capfd, caplog, flags, needle):
    assert_one_line_error(["sample", cgan_run, *flags, "--npz", tmp_path / "x.npz"], capfd, caplog, needle)
    assert not (tmp_path / "x.npz").exists()


def test_label_on_unconditional_model(dcgan_run, tmp_path, capfd, caplog):
    assert_one_line_error(["sample", dcgan_run, "--label", 3, "--npz", tmp_path / "x.npz"], capfd, caplog, "--label")


def test_sample_to_unwritable_path(cgan_run, tmp_path, capfd, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert_one_line_error(["sample", cgan_run, "--n", 4, "--npz", blocker / "x.npz"], capfd, caplog, "x.npz")


# --- what works ----------------------------------------------------------------------------------------

def test_sample_npz_of_a_conditional_model(cgan_run, tmp_path, capfd, caplog):
    code, out, lines = run_main(["sample", cgan_run, "--n", 20, "--npz", tmp_path / "s.npz"], capfd, caplog)
    assert code == 0 and "s.npz" in out
    with np.load(tmp_path / "s.npz") as d:
        assert d["images"].dtype == np.uint8 and d["images"].shape == (20, 28, 28, 1)
        assert d["labels"].dtype == np.int64 and d["labels"].tolist() == [i % 10 for i in range(20)]
        assert d["images"].std() > 0
    code, _, _ = run_main(["sample", cgan_run, "--n", 5, "--label", 7, "--npz", tmp_path / "seven.npz",
                           "--grid", tmp_path / "seven.png"], capfd, caplog)
    assert code == 0
    with np.load(tmp_path / "seven.npz") as d:
        assert d["labels"].tolist() == [7] * 5
    assert Image.open(tmp_path / "seven.png").size[0] > 28


def test_sample_default_grid_goes_into_the_run(dcgan_run, tmp_path, capfd, caplog):
    run = tmp_path / "run"
    shutil.copytree(dcgan_run / "checkpoints", run / "checkpoints")
    code, out, _ = run_main(["sample", run / "checkpoints" / "step_000200.json", "--n", 9, "--seed", 4], capfd, caplog)
    assert code == 0
    grid = np.asarray(Image.open(run / "samples" / "sample_seed4.png"))
    assert grid.ndim == 2 and grid.std() > 0


def test_show_config(tmp_path, capfd, caplog):
    code, out, _ = run_main(["train", "wgan-gp", "--batch-size", 12, "--out", tmp_path / "r", "--show-config",
                             "--set", "optim.G.lr=1e-5"], capfd, caplog)
    cfg = yaml.safe_load(out)
    assert code == 0 and cfg["model"] == "wgan-gp" and cfg["batch_size"] == 12 and cfg["gp_weight"] == 10.0
    assert cfg["optim"]["G"]["lr"] == 1e-5 and not (tmp_path / "r").exists()  # nothing trained or written


def test_train_and_resume(tmp_path, capfd, caplog):
    args = ["train", "gan", "--batch-size", 4, "--out", tmp_path / "r", "--quiet", "--set", *FAST, "hidden_g=[16]", "hidden_d=[16]"]
    code, out, _ = run_main([*args[:2], "--steps", 2, *args[2:]], capfd, caplog)
    assert code == 0 and "trained gan for 2 steps" in out
    code, out, _ = run_main(["train", "gan", "--steps", 3, "--out", tmp_path / "r", "--resume", "--quiet"], capfd, caplog)
    assert code == 0 and "for 3 steps" in out
    assert [s for s, _ in checkpoint.list_checkpoints(tmp_path / "r" / "checkpoints")] == [2, 3]


# --- real processes ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def processes(tmp_path_factory, corrupt_run):
    """Start every command at once, then collect (exit code, stdout, stderr) by name."""
    out = tmp_path_factory.mktemp("cli")
    commands = {
        "models": ["models"],
        "datasets": ["datasets"],
        "debug": ["--debug", "train", "gann", "--steps", "1", "--out", str(out / "d")],
        "corrupt": ["sample", str(corrupt_run)],
        "train": ["train", "gan", "--steps", "2", "--batch-size", "4", "--out", str(out / "run"), "--quiet",
                  "--set", *FAST, "hidden_g=[16]", "hidden_d=[16]"],
    }
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = {name: subprocess.Popen([sys.executable, "-m", "ganforge", *argv], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, env=env) for name, argv in commands.items()}
    results = {}
    for name, proc in started.items():
        stdout, stderr = proc.communicate(timeout=300)
        results[name] = (proc.returncode, stdout, stderr)
    results["out"] = out
    return results


def test_process_bad_input_exit_code_and_one_line(processes):
    code, stdout, stderr = processes["corrupt"]
    assert code == 2
    assert stderr.count("\n") == 1 and stderr.startswith("ganforge: error: ") and "step_000200.safetensors" in stderr
    assert "Traceback" not in stderr and stdout == ""


def test_process_debug_shows_the_traceback(processes):
    code, _, stderr = processes["debug"]
    assert code not in (0, 2)
    assert "Traceback" in stderr and "UserError" in stderr and "gann" in stderr


# The fourteen families, written out here: the command prints the registry, so a comparison with the
# registry would pass whatever it held.
FAMILIES = ["gan", "cgan", "dcgan", "lsgan", "wgan", "wgan-gp", "acgan", "pix2pix", "cyclegan", "srgan", "inpaint",
            "stargan", "stylegan", "infogan"]


def test_process_models_lists_the_fourteen_families_each_with_its_paper(processes):
    code, stdout, _ = processes["models"]
    assert code == 0
    lines = stdout.splitlines()
    assert sorted(line.split()[0] for line in lines) == sorted(FAMILIES)
    assert all(re.search(r"\[[A-Z][^]]* (19|20)\d\d\b[^]]*\]$", line) for line in lines), lines  # [authors year, title]
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    models = readme[readme.index("| name | paper |"):].split("\n\n")[0]  # the model table, before the recipes'
    assert sorted(re.findall(r"^\| `([a-z0-9-]+)` \|", models, flags=re.M)) == sorted(FAMILIES)


def test_process_datasets_lists_the_embedded_digits(processes):
    code, stdout, _ = processes["datasets"]
    assert code == 0
    rows = [line.split() for line in stdout.splitlines()]
    assert ["mnist5k", "embedded"] in [r[:2] for r in rows]


def test_process_trains_a_run(processes):
    code, stdout, stderr = processes["train"]
    run = processes["out"] / "run"
    assert code == 0, stderr
    assert "trained gan for 2 steps" in stdout and str(run) in stdout
    assert (run / "checkpoints" / "step_000002.json").is_file() and (run / "config.yaml").is_file()


def test_help_lists_every_command_without_importing_torch():
    """A plugged command's module (and torch) is imported only when that command runs: `--help` stays instant."""
    script = ("import sys\nfrom ganforge.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
              "print('TORCH' if 'torch' in sys.modules else 'NO TORCH')")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip().endswith("NO TORCH"), done.stderr
    for command in ("train", "sample", "eval", "translate", "serve", "explore", "bench"):
        assert f"    {command}" in done.stdout
