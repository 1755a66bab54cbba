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
from ganforge.export import export_generator
from ganforge.imaging.transforms import to_uint8
from ganforge.models.inpaint import masked_input

from conftest import FAST
from test_resume_every_model import TINY

README = Path(__file__).resolve().parents[1] / "README.md"
BATCHES = (1, 3)


@pytest.fixture(scope="module")
def run_of(tmp_path_factory):
    """name -> the folder of a 2-step run of that family on its default data with tiny networks, trained once;
    "stylegan-fir": StyleGAN with its low-pass filter after each upsampling (on above 32 px)."""
    runs = {}

    def run(name: str) -> Path:
        if name not in runs:
            out = tmp_path_factory.mktemp("runs") / name
            family, extra = ("stylegan", ["resample=fir"]) if name == "stylegan-fir" else (name, [])
            # a family new to TINY trains at its defaults: slower, still real
            ganforge.train(family, out=str(out), steps=2, batch_size=4, seed=1,
                           set=[*FAST, *TINY.get(family, []), *extra], progress=False)
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
        made = []
        for psi in (1.0, 0.6):
            case, want = {**inputs, "truncation": torch.tensor(psi)}, g.sample(n, seed=seed, truncation=psi)
            if not model.can(Capability.STYLE_MIXING):
                made.append((case, want))
                continue
            # a mix of zeros samples z alone; ones at the fine slots take those styles from z_mix, as `mix` does
            z_mix = model.latent(n, torch.Generator().manual_seed(seed + 1))
            slots = model.style_slots()
            mix = torch.zeros(n, sum(len(s) for s in slots.values()))
            made.append(({**case, "z_mix": z_mix, "mix": mix}, want))
            mix = mix.clone()
            mix[:, slots["fine"]] = 1.0
            mixed = model.mix(z, z_mix, ["fine"], psi=psi)
            assert (mixed - want).abs().max().item() > 1e-3  # the case tells a file that ignores `mix` apart
            made.append(({**case, "z_mix": z_mix, "mix": mix}, mixed))
        return made
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
        if g.model.can(Capability.STYLE_MIXING):
            assert json.loads(meta["style_slots"]) == g.model.style_slots()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(  # written atomically: no temporary file left
        f"{name}-{d}.{s}" for d in (g.model.directions or (None,)) for s in ("onnx", "pt"))


def test_a_graph_the_torchscript_exporter_cannot_take_goes_through_dynamo(run_of, tmp_path):
    """The filter's kernel takes its shape from the input's, which the TorchScript-based exporter cannot infer
    with a free batch; torch's dynamo-based exporter keeps the batch free and the images the same."""
    run = run_of("stylegan-fir")
    done = export_generator(run, tmp_path / "fir.onnx")
    assert done["exporter"] == "dynamo" and sorted(done["checked"]) == [1, 3]
    g = ganforge.load(run)
    session = onnxruntime.InferenceSession(str(tmp_path / "fir.onnx"), providers=["CPUExecutionProvider"])
    for n in (2, 5):
        for inputs, want in cases(g, None, n, seed=n):
            got = session.run(None, {k: v.numpy() for k, v in inputs.items()})[0]
            assert np.abs(got - want.numpy()).max() <= 1e-4


def test_without_onnxscript_such_a_graph_is_refused_in_one_line_and_a_fixed_batch_still_exports(run_of, tmp_path):
    run, out = run_of("stylegan-fir"), tmp_path / "fir.onnx"
    script = without("onnxscript") + f"""
from ganforge import cli
print("codes", cli.main(["export", {str(run)!r}, "--out", {str(out)!r}]), cli.main(["export", {str(run)!r}, "--out", {str(out)!r}, "--batch", "3"]))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.stdout.splitlines()[-1] == "codes 2 0", done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("ganforge: error")]
    assert len(errors) == 1 and "onnxscript" in errors[0] and "--batch N" in errors[0]
    assert onnxruntime.InferenceSession(str(out)).get_inputs()[0].shape == [3, 8]


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
    checkpoint = next((run_of("dcgan") / "checkpoints").glob("*.safetensors"))
    assert "would overwrite a checkpoint" in refused(capsys, str(checkpoint), "--out", str(checkpoint))
    assert "would overwrite a checkpoint" in refused(capsys, dcgan, "--out", str(checkpoint.with_suffix(".onnx")))
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written


def without(*names: str) -> str:
    """Python code that, run first in a process, makes importing `names` fail, as where they are not installed."""
    return f"""
import sys

class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {names!r}:
            raise ImportError(f"{{name}} is not installed here")

assert not set({names!r}) & {{m.partition(".")[0] for m in sys.modules}}
sys.meta_path.insert(0, Absent())
for name in {names!r}:
    try:
        __import__(name)
    except ImportError:
        pass
    else:
        raise SystemExit(f"{{name}} could be imported")
"""


def readme_snippet() -> str:
    """The first python block of the README's Export section."""
    section = README.read_text().split("\n## Export", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_snippet_samples_without_torch_or_ganforge(run_of, tmp_path):
    run = run_of("dcgan")
    export(str(run), "--out", str(tmp_path / "dcgan.onnx"))
    keep = "\nnp.savez('made.npz', z=z, images=images, pixels=pixels)\nprint(meta['family'], 'torch' in sys.modules)\n"
    done = subprocess.run([sys.executable, "-c", without("torch", "ganforge") + readme_snippet() + keep], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["dcgan", "False"]
    made = np.load(tmp_path / "made.npz")
    g = ganforge.load(run)
    with torch.no_grad():
        want = g.model.generate(torch.from_numpy(made["z"]))
    assert made["images"].shape == (16, 1, 28, 28) and np.abs(made["images"] - want.numpy()).max() <= 1e-4
    assert np.array_equal(made["pixels"], to_uint8(torch.from_numpy(made["images"])).numpy())
