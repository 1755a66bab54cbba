"""`ganforge synth`: a balanced labelled data set from a class-conditional run, written as class folders of PNGs,
data.npz and synth.json, that ganforge reads back as --data."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge import api, cli
from ganforge.commands.synth import synthesize
from ganforge.data import load_dataset

from conftest import train_fast

N = 23  # ten classes: 3 images for classes 0-2, 2 for the rest


@pytest.fixture(scope="module")
def cgan_mnist(tmp_path_factory):
    """A short real cgan run on mnist5k: 30 steps of narrow networks."""
    out = tmp_path_factory.mktemp("runs") / "cgan"
    train_fast("cgan", out, steps=30, batch_size=16, data="mnist5k")
    return out


@pytest.fixture(scope="module")
def synthetic(cgan_mnist, tmp_path_factory):
    """`ganforge synth` of N images, seed 5, in batches of 7 (so the noise stream crosses batches)."""
    out = tmp_path_factory.mktemp("synth") / "set"
    assert cli.main(["synth", str(cgan_mnist), "--n", str(N), "--out", str(out), "--seed", "5", "--batch", "7", "--quiet"]) == 0
    return out


def synth_lines(argv, capfd):
    code = cli.main([str(a) for a in argv])
    out, err = capfd.readouterr()
    return code, out, err.splitlines()


def test_synth_writes_balanced_class_folders_npz_and_record(cgan_mnist, synthetic):
    counts = [3, 3, 3, 2, 2, 2, 2, 2, 2, 2]
    digits = [str(d) for d in range(10)]
    assert sorted(p.name for p in synthetic.iterdir()) == sorted([*digits, "data.npz", "synth.json"])
    with np.load(synthetic / "data.npz") as arrays:
        images, labels, classes = arrays["images"], arrays["labels"], arrays["classes"]
    assert images.dtype == np.uint8 and images.shape == (N, 28, 28, 1)
    assert labels.dtype == np.int64 and labels.tolist() == [c for c, k in enumerate(counts) for _ in range(k)]
    assert classes.tolist() == digits
    for c, name in enumerate(digits):
        files = sorted((synthetic / name).iterdir())
        assert len(files) == counts[c]
        for path in files:
            row = int(path.stem)
            assert labels[row] == c
            with Image.open(path) as png:
                assert png.size == (28, 28) and png.mode == "L"
                assert np.array_equal(np.asarray(png), images[row, :, :, 0])  # the PNG is its npz row
    record = json.loads((synthetic / "synth.json").read_text())
    g = api.load(cgan_mnist)
    assert record["model"] == "cgan" and record["step"] == 30 == g.step
    assert record["checkpoint"].endswith("step_000030.safetensors")
    assert record["seed"] == 5 and record["batch"] == 7 and record["n"] == N and record["per_class"] == counts
    assert record["classes"] == digits and record["native_size"] == 28
    assert record["config"] == json.loads(json.dumps(g.cfg.to_dict())) and record["config"]["steps"] == 30
    assert record["command"] == f"ganforge synth {cgan_mnist} --n {N} --out {synthetic} --seed 5 --batch 7"


def test_synth_output_reads_back_and_trains_as_data(synthetic, tmp_path):
    with np.load(synthetic / "data.npz") as arrays:
        images, labels = arrays["images"], arrays["labels"]
    folder, npz = load_dataset(str(synthetic)), load_dataset(str(synthetic / "data.npz"))
    for data in (folder, npz):
        assert data.classes == [str(d) for d in range(10)]
        assert torch.equal(data.labels, torch.from_numpy(labels))
        assert torch.equal(data.images[:, 0], torch.from_numpy(images[..., 0]))
    for spec in (synthetic, synthetic / "data.npz"):
        summary = train_fast("cgan", tmp_path / spec.name, data=str(spec), steps=2, batch_size=8)
        assert summary["step"] == 2
        assert api.load(summary["checkpoint"]).classes == [str(d) for d in range(10)]


def test_synth_refuses_an_unconditional_model_in_one_line(tmp_path, capfd):
    dcgan = tmp_path / "dcgan"
    train_fast("dcgan", dcgan, steps=1, batch_size=8)
    out = tmp_path / "set"
    code, stdout, lines = synth_lines(["synth", dcgan, "--n", 10, "--out", out, "--quiet"], capfd)
    assert code == 2 and stdout == "" and len(lines) == 1, lines
    assert lines[0].startswith("ganforge: error: synth needs a class-conditional model")
    assert "cgan" in lines[0] and "acgan" in lines[0] and "holds a dcgan" in lines[0]
    assert not out.exists()


def test_synth_same_seed_same_images_other_seed_others(cgan_mnist, synthetic, tmp_path):
    synthesize(cgan_mnist, N, tmp_path / "again", seed=5, batch=7)
    synthesize(cgan_mnist, N, tmp_path / "other", seed=6, batch=7)
    with np.load(synthetic / "data.npz") as a, np.load(tmp_path / "again" / "data.npz") as b, \
            np.load(tmp_path / "other" / "data.npz") as c:
        assert np.array_equal(a["images"], b["images"])
        assert not np.array_equal(a["images"], c["images"])
    assert (synthetic / "0" / "000000.png").read_bytes() == (tmp_path / "again" / "0" / "000000.png").read_bytes()


def test_synth_refuses_a_non_empty_out_unless_force(cgan_mnist, tmp_path, capfd):
    out = tmp_path / "set"
    code, stdout, lines = synth_lines(["synth", cgan_mnist, "--n", N, "--out", out], capfd)
    assert code == 0 and any(line.startswith("synth: 100%") for line in lines), lines  # the progress bar
    code, stdout, lines = synth_lines(["synth", cgan_mnist, "--n", 10, "--out", out, "--quiet"], capfd)
    assert code == 2 and len(lines) == 1 and "is not empty: add --force" in lines[0], lines
    assert len(list(out.glob("*/*.png"))) == N  # untouched
    code, stdout, lines = synth_lines(["synth", cgan_mnist, "--n", 10, "--out", out, "--force", "--quiet"], capfd)
    assert code == 0 and lines == []  # --quiet: no progress bar
    assert len(list(out.glob("*/*.png"))) == 10  # the earlier set's images are gone, not mixed in
    assert json.loads((out / "synth.json").read_text())["n"] == 10
    (out / "notes.txt").write_text("mine")
    code, stdout, lines = synth_lines(["synth", cgan_mnist, "--n", 10, "--out", out, "--force", "--quiet"], capfd)
    assert code == 2 and len(lines) == 1 and "'notes.txt', which synth did not write" in lines[0], lines
    assert (out / "notes.txt").read_text() == "mine"
