"""`ganforge export`: every registered family, after a short real run, exported as ONNX and as TorchScript gives
ganforge's own images (`ganforge.load(...).sample` for noise, `model.translate` for image-to-image) to 1e-4 at two
batch sizes; `--batch` fixes the batch; what cannot be exported is refused in one line; and the README's snippet
samples with numpy and ONNX Runtime in a process where torch and ganforge cannot be imported."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

import ganforge
from ganforge import cli
from ganforge.models import MODELS
from ganforge.models.base import Capability
from ganforge.models.inpaint import masked_input

from conftest import FAST
from test_resume_every_model import TINY

README = Path(__file__).resolve().parents[1] / "README.md"
BATCHES = (1, 3)


@pytest.fixture(scope="module")
def run_of(tmp_path_factory):
    """name -> the folder of a 2-step run of that family on its default data with tiny networks, trained once."""
    runs = {}

    def run(name: str) -> Path:
        if name not in runs:
            out = tmp_path_factory.mktemp("runs") / name
            # a family new to TINY trains at its defaults: slower, still real
            ganforge.train(name, out=str(out), steps=2, batch_size=4, seed=1, set=[*FAST, *TINY.get(name, [])],
                           progress=False)
            runs[name] = out
        return runs[name]

    return run


def export(*args: str) -> None:
    assert cli.main(["export", *args]) == 0


def refused(capsys, *args: str) -> str:
    """The one line `ganforge export ARGS` exits with (code 2)."""
    assert cli.main(["export", *args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ganforge: error: "), lines
    return lines[0]


def cases(g, direction, n: int, seed: int):
    """[(inputs by name, ganforge's own images)] for n images: seeded latents against `sample` (truncated too where
    the family can), or images (with masks, target attributes) against `translate`."""
    model = g.model
    if not model.translates:
        z = model.latent(n, torch.Generator().manual_seed(seed))
        inputs = {"z": z}
        if model.conditional:
            inputs["labels"] = torch.arange(n) % len(g.classes)  # as sample() cycles the classes
        if not model.can(Capability.TRUNCATION):
            return [(inputs, g.sample(n, seed=seed))]
        return [({**inputs, "truncation": torch.tensor(psi)}, g.sample(n, seed=seed, truncation=psi)) for psi in (1.0, 0.6)]
    rng = torch.Generator().manual_seed(seed)
    side = model.size_b // model.scale
    x = torch.rand(n, model.input_channels(direction), side, side, generator=rng) * 2 - 1
    inputs, source, options = {"image": x}, x, {}
    if model.can(Capability.MASK):
        inputs["mask"] = (torch.rand(n, 1, side, side, generator=rng) < 0.3).float()
        source = masked_input(x, inputs["mask"] > 0.5)
    if model.can(Capability.ATTRIBUTES):
        inputs["attributes"] = (torch.rand(n, len(model.attribute_names), generator=rng) < 0.5).float()
        options["target"] = inputs["attributes"]
    with torch.no_grad():
        return [(inputs, model.translate(source, direction, **options))]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_family_exports_to_onnx_and_torchscript_with_its_own_outputs(run_of, tmp_path, name):
    run = run_of(name)
    g = ganforge.load(run)
    for direction in g.model.directions or (None,):
        flags = ["--direction", direction] if direction else []
        onnx_file, script_file = tmp_path / f"{name}-{direction}.onnx", tmp_path / f"{name}-{direction}.pt"
        export(str(run), "--format", "onnx", "--out", str(onnx_file), *flags)
        export(str(run), "--format", "torchscript", "--out", str(script_file), *flags)
        session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
        script = torch.jit.load(str(script_file))
        names = [i.name for i in session.get_inputs()]
        for n in BATCHES:
            for inputs, want in cases(g, direction or "a2b", n, seed=10 + n):
                assert names == list(inputs)
                got_onnx = session.run(None, {k: v.numpy() for k, v in inputs.items()})[0]
                with torch.no_grad():
                    got_script = script(*inputs.values())
                assert got_onnx.shape == tuple(want.shape) and got_script.shape == want.shape
                assert np.abs(got_onnx - want.numpy()).max() <= 1e-4, (name, direction, n)
                assert (got_script - want).abs().max().item() <= 1e-4, (name, direction, n)
        meta = session.get_modelmeta().custom_metadata_map
        extra = {"ganforge.json": ""}
        torch.jit.load(str(script_file), _extra_files=extra)
        assert json.loads(extra["ganforge.json"]) == meta
        assert meta["family"] == name and meta["inputs"] == ",".join(names) and meta["ganforge_version"] == ganforge.__version__
        assert (int(meta["channels"]), int(meta["size"])) == tuple(want.shape[1:3])
        assert session.get_inputs()[0].shape[0] == "batch"  # dynamic unless --batch
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(  # written atomically: no temporary file left
        f"{name}-{d}.{s}" for d in (g.model.directions or (None,)) for s in ("onnx", "pt"))


def test_batch_fixes_the_onnx_batch(run_of, tmp_path):
    out = tmp_path / "dcgan2.onnx"
    export(str(run_of("dcgan")), "--out", str(out), "--batch", "2")
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [2, 100] and session.get_modelmeta().custom_metadata_map["batch"] == "2"
    assert session.run(None, {"z": np.zeros((2, 100), np.float32)})[0].shape == (2, 1, 28, 28)
    with pytest.raises(Exception, match="dimension|Got invalid dimensions"):
        session.run(None, {"z": np.zeros((3, 100), np.float32)})


def test_what_does_not_apply_is_refused_in_one_line(run_of, tmp_path, capsys):
    dcgan, pix2pix = str(run_of("dcgan")), str(run_of("pix2pix"))
    assert "drop --batch" in refused(capsys, dcgan, "--format", "torchscript", "--batch", "2", "--out", str(tmp_path / "a.pt"))
    assert "--direction is for image-to-image" in refused(capsys, dcgan, "--direction", "a2b", "--out", str(tmp_path / "a.onnx"))
    assert "not b2a" in refused(capsys, pix2pix, "--direction", "b2a", "--out", str(tmp_path / "b.onnx"))
    assert "--batch must be" in refused(capsys, dcgan, "--batch", "0", "--out", str(tmp_path / "c.onnx"))
    assert "no run or checkpoint" in refused(capsys, str(tmp_path / "nothing"), "--out", str(tmp_path / "d.onnx"))
    assert "it is a folder" in refused(capsys, dcgan, "--out", str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written


# Installed before the README's snippet runs: importing torch or ganforge fails, as where neither is installed.
NO_TORCH = """
import sys

class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("torch", "ganforge"):
            raise ImportError(f"{name} is not installed here")

assert not {"torch", "ganforge"} & {m.partition(".")[0] for m in sys.modules}
sys.meta_path.insert(0, Absent())
for name in ("torch", "ganforge"):
    try:
        __import__(name)
    except ImportError:
        pass
    else:
        raise SystemExit(f"{name} could be imported")
"""


def readme_snippet() -> str:
    """The first python block of the README's Export section."""
    section = README.read_text().split("\n## Export", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_snippet_samples_without_torch_or_ganforge(run_of, tmp_path):
    export(str(run_of("dcgan")), "--out", str(tmp_path / "dcgan.onnx"))
    report = "\nimport json\nprint(json.dumps({'shape': pixels.shape, 'dtype': str(pixels.dtype), 'spread': float(images.std()), " \
             "'family': meta['family'], 'torch': 'torch' in sys.modules}))\n"
    done = subprocess.run([sys.executable, "-c", NO_TORCH + readme_snippet() + report], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["shape"] == [16, 1, 28, 28] and out["dtype"] == "uint8" and out["family"] == "dcgan"
    assert out["spread"] > 0.01 and not out["torch"]
