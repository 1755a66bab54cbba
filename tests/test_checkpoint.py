"""Checkpoints: exact resume, atomic writes, pruning, and one clear error for every file that is not a good one."""
import json
import shutil

import pytest
import torch

import ganforge
from ganforge.errors import UserError
from ganforge.training import checkpoint
from ganforge.version import __version__

from conftest import train_fast


def load_pair(run, step):
    return checkpoint.load(str(run / "checkpoints" / f"step_{step:06d}.json"))


def train_records(run):
    """The loss records of a run, without the wall-clock fields."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("time", "img_per_s")} for r in rows if r["kind"] == "train"]


def only_complete_checkpoints(folder):
    names = sorted(p.name for p in folder.iterdir())
    stems = {n.rsplit(".", 1)[0] for n in names}
    return names == sorted(f"{s}.{ext}" for s in stems for ext in ("json", "safetensors")) and all(s.startswith("step_") for s in stems)


# Every source of state a resumed run must restore: Adam moments, EMA, augmentation draws (global RNG),
# the data order across epochs (40 images, batch 16), batch-norm statistics.
@pytest.mark.parametrize("name", ["dcgan", "wgan-gp", "acgan"])
def test_resume_is_bit_exact(tmp_path, digits_npz, name):
    sets = ["ema.beta=0.9", "augment.policy=color,translation,cutout"]
    common = dict(data=str(digits_npz), batch_size=16, seed=3)
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train_fast(name, straight, sets=sets, steps=6, **common)
    train_fast(name, resumed, sets=sets, steps=3, **common)
    with open(resumed / "metrics.jsonl", "a") as f:  # a record past the checkpoint, as a killed run leaves
        f.write(json.dumps({"kind": "train", "step": 4, "G/loss": 99.0}) + "\n")
    ganforge.train(name, out=str(resumed), steps=6, resume=True, progress=False)  # the run's own config

    (a, meta_a), (b, meta_b) = load_pair(straight, 6), load_pair(resumed, 6)
    assert sorted(a) == sorted(b)
    for prefix in ("net.G.", "net.D.", "ema.G.", "optim.G.state.", "optim.D.state.", "rng.torch"):
        assert any(k.startswith(prefix) for k in a), prefix
    differing = [k for k in a if not torch.equal(a[k], b[k])]
    assert differing == []
    for key in ("optimizers", "schedulers", "sampler", "step"):
        assert meta_a[key] == meta_b[key], key
    assert meta_b["sampler"]["epoch"] > 0  # the data order crossed epochs, across the resume too
    assert train_records(straight) == train_records(resumed)
    assert only_complete_checkpoints(resumed / "checkpoints")


def test_checkpoint_contents(dcgan_run):
    tensors, meta = load_pair(dcgan_run, 200)
    assert meta["format"] == "ganforge-checkpoint" and meta["ganforge_version"] == __version__
    assert meta["step"] == 200 and meta["model"] == "dcgan" and meta["config"]["batch_size"] == 32
    assert meta["data"]["native_size"] == 28 and meta["data"]["classes"] == [str(d) for d in range(10)]
    assert meta["schedulers"] == {"G": 200, "D": 200}
    assert int(tensors["optim.G.state.0.step"]) == 200 and int(tensors["optim.D.state.0.step"]) == 200
    # safetensors: an 8-byte little-endian header length, then a JSON header; nothing that unpickles
    raw = (dcgan_run / "checkpoints" / "step_000200.safetensors").read_bytes()
    header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])
    assert "net.G.project.0.weight" in header
    assert only_complete_checkpoints(dcgan_run / "checkpoints")


def test_resolve_finds_the_newest_checkpoint_from_any_path(tmp_path):
    for step in (9, 10, 1000000):
        checkpoint.save(tmp_path / "checkpoints", step, {"w": torch.zeros(1)}, {"model": "x"})
    newest = tmp_path / "checkpoints" / "step_1000000.json"
    assert checkpoint.resolve(str(tmp_path)) == newest
    assert checkpoint.resolve(str(tmp_path / "checkpoints")) == newest
    assert checkpoint.resolve(str(newest.with_suffix(".safetensors"))) == newest
    older = tmp_path / "checkpoints" / "step_000009.json"
    assert checkpoint.resolve(str(older)) == older
    # a sidecar without its tensors is not a checkpoint
    newest.with_suffix(".safetensors").unlink()
    assert checkpoint.resolve(str(tmp_path)) == tmp_path / "checkpoints" / "step_000010.json"


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "step_000001.json"
    target.write_text("old")

    def fail_midway(tmp):
        with open(tmp, "w") as f:
            f.write("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        checkpoint.atomic_write(target, fail_midway)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["step_000001.json"]  # no temporary file left behind
    checkpoint.atomic_write(target, lambda tmp: open(tmp, "w").write("new"))
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["step_000001.json"]


def test_prune_keeps_the_newest_and_the_best(tmp_path):
    for step in range(1, 7):
        checkpoint.save(tmp_path, step, {"w": torch.full((2,), float(step))}, {"model": "x"})
    checkpoint.prune(tmp_path, keep=2, protect=3)
    assert [s for s, _ in checkpoint.list_checkpoints(tmp_path)] == [3, 5, 6]
    assert only_complete_checkpoints(tmp_path)
    checkpoint.prune(tmp_path, keep=2, protect=None)
    assert [s for s, _ in checkpoint.list_checkpoints(tmp_path)] == [5, 6]
    checkpoint.prune(tmp_path, keep=5, protect=6)
    assert [s for s, _ in checkpoint.list_checkpoints(tmp_path)] == [5, 6]


def test_training_prunes_periodic_checkpoints(tmp_path):
    train_fast("gan", tmp_path, sets=["checkpoint.every=1", "checkpoint.keep=2"], steps=4, batch_size=4)
    assert [s for s, _ in checkpoint.list_checkpoints(tmp_path / "checkpoints")] == [3, 4]
    assert only_complete_checkpoints(tmp_path / "checkpoints")


@pytest.fixture
def run_copy(dcgan_run, tmp_path):
    """A copy of the trained DCGAN run's final checkpoint, free to damage."""
    folder = tmp_path / "run" / "checkpoints"
    folder.mkdir(parents=True)
    for suffix in (".json", ".safetensors"):
        shutil.copy(dcgan_run / "checkpoints" / f"step_000200{suffix}", folder)
    return folder / "step_000200.json"


def assert_refused(path, *needles):
    """Both the loader and the Python API refuse `path` with one line naming the file."""
    for load in (checkpoint.load, ganforge.load):
        with pytest.raises(UserError) as e:
            load(str(path))
        message = str(e.value)
        assert "\n" not in message
        for needle in needles:
            assert str(needle) in message, (needle, message)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "missing"])
def test_corrupt_tensors_are_refused_with_their_path(run_copy, damage):
    tensors = run_copy.with_suffix(".safetensors")
    raw = tensors.read_bytes()
    if damage == "truncated":
        tensors.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        tensors.write_bytes(bytes(range(256)) * 8)
    elif damage == "empty":
        tensors.write_bytes(b"")
    else:
        tensors.unlink()
    assert_refused(run_copy, tensors)


def test_newer_format_is_refused(run_copy):
    meta = json.loads(run_copy.read_text())
    meta["format_version"] = 99
    meta["ganforge_version"] = "99.0"
    run_copy.write_text(json.dumps(meta))
    assert_refused(run_copy, run_copy, "upgrade", "99.0")


@pytest.mark.parametrize("text", ['{"hello": 1}', "[1, 2, 3]", "{not json", "\u00ff\u00fe", '{"format": "ganforge-checkpoint", "format_version": 1}'])
def test_sidecars_that_are_not_ours_are_refused(run_copy, text):
    run_copy.write_text(text, encoding="latin-1")
    assert_refused(run_copy, run_copy)


@pytest.mark.parametrize("field,value,needle", [("format_version", "two", "format_version 'two'"), ("step", "200", "step '200'"),
                                                 ("model", 5, "model 5"), ("config", [1], "config is not a mapping"),
                                                 ("data", "digits", "data is not a mapping"), ("data.size", "big", "data.size 'big'"),
                                                 ("data.channels", 0, "data.channels 0"), ("data.classes", "0123", "data.classes")])
def test_sidecars_with_damaged_fields_are_refused_by_field(run_copy, field, value, needle):
    meta = json.loads(run_copy.read_text())
    *parents, last = field.split(".")
    node = meta
    for key in parents:
        node = node[key]
    node[last] = value
    run_copy.write_text(json.dumps(meta))
    assert_refused(run_copy, run_copy, "corrupt checkpoint sidecar", needle)


def test_a_folder_in_place_of_the_sidecar_is_no_checkpoint(run_copy):
    run_copy.unlink()
    run_copy.mkdir()
    assert_refused(run_copy.parent.parent, "no checkpoint")
    assert_refused(run_copy, run_copy)


def test_non_checkpoint_paths_are_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    assert_refused(tmp_path / "notes.txt", "notes.txt")
    assert_refused(tmp_path / "empty", "empty")
    assert_refused(tmp_path / "missing", "missing")


def test_tensors_of_another_model_are_refused(run_copy, cgan_run):
    shutil.copy(cgan_run / "checkpoints" / "step_000003.safetensors", run_copy.with_suffix(".safetensors"))
    with pytest.raises(UserError, match="step_000200"):
        ganforge.load(run_copy)


def test_resume_with_another_model_is_refused(run_copy):
    out = run_copy.parent.parent
    with pytest.raises(UserError) as e:
        ganforge.train("wgan", out=str(out), steps=200, resume=True, progress=False)
    assert str(out) in str(e.value) and "dcgan" in str(e.value)


def test_resume_with_networks_that_do_not_fit_is_refused(run_copy):
    with pytest.raises(UserError, match="does not fit"):
        ganforge.train("dcgan", out=str(run_copy.parent.parent), steps=200, resume=True, progress=False, set=["width=8"])


def test_resume_without_a_checkpoint_and_overwriting_a_run_are_refused(run_copy, tmp_path):
    with pytest.raises(UserError, match="no checkpoint"):
        ganforge.train("dcgan", out=str(tmp_path / "fresh"), steps=2, resume=True, progress=False)
    with pytest.raises(UserError, match="--resume"):
        ganforge.train("dcgan", out=str(run_copy.parent.parent), steps=2, progress=False)
