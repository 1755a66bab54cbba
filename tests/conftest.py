"""Shared fixtures: a fast configuration, small real data, trained runs that several test files reuse, and a
ganforge cache of each test's own (never the user's ~/.cache/ganforge)."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import ganforge
from ganforge import api
from ganforge.data.base import ImageData
from ganforge.data.mnist5k import DIGITS, mnist5k
from ganforge.training.trainer import Trainer

# Test tensors are tiny: one thread avoids the start-up and synchronisation cost of a thread pool, which
# dominates such small operations (and multiplies when the cores are busy).
torch.set_num_threads(1)

# A run that spends its time on training steps only: a loss record every step, no sample grids, quality
# figures or periodic checkpoints (the final checkpoint is still written).
FAST = ["log.every=1", "sample.every=0", "eval.metrics=none", "checkpoint.every=0"]


def small(model: str) -> list:
    """Narrow networks for a model, so a test step costs milliseconds."""
    if model == "gan":
        return ["hidden_g=[32,64]", "hidden_d=[64,32]"]
    return ["width=8"]


def digits(n: int = 100, step: int = 40) -> ImageData:
    """n real MNIST digits spread over all ten classes (mnist5k is sorted by label)."""
    full = mnist5k("train")
    idx = np.arange(0, n * step, step)
    return ImageData(name="digits", images=full.images[idx].clone(), labels=full.labels[idx].clone(), classes=list(DIGITS))


def make_trainer(model: str, out, sets=(), data=None, steps: int = 2, batch_size: int = 8, **flags) -> Trainer:
    """A Trainer on small real data with the fast settings and narrow networks; `sets` refine them."""
    cfg = api.resolve_config(model, sets=[*FAST, *small(model), *sets], out=str(out), steps=steps,
                             batch_size=batch_size, **flags)
    return Trainer(cfg, Path(out), progress=False, data=digits() if data is None else data)


def train_fast(model: str, out, sets=(), **kwargs) -> dict:
    """ganforge.train with the fast settings and narrow networks."""
    return ganforge.train(model, out=str(out), set=[*FAST, *small(model), *sets], progress=False, **kwargs)


def train_latent_runs(root: Path) -> Path:
    """A stylegan and a dcgan run of 30 steps on mnist5k under root/MODEL: what the latent tools (project, edit)
    are tested on; each module trains its own, since some tests change a run's files."""
    for model in ("stylegan", "dcgan"):
        train_fast(model, root / model, data="mnist5k", steps=30, batch_size=8, seed=0)
    return root


def forget_cache_paths() -> None:
    """Drop what the code keeps in memory from the previous cache folder: the ONNX Inception session."""
    inception = sys.modules.get("ganforge.metrics.inception")
    if inception is not None:
        inception._load_onnx.cache_clear()


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ganforge-cache")


@pytest.fixture(scope="session", autouse=True)
def _session_env_cache(session_cache):
    """Session and module fixtures (and the processes they start) run before any test's own cache is set."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GANFORGE_CACHE", str(session_cache))
        yield


@pytest.fixture(autouse=True)
def ganforge_cache(tmp_path_factory, monkeypatch) -> Path:
    """This test's own empty cache (downloads, the ONNX export, real features), apart from tmp_path's files."""
    folder = tmp_path_factory.mktemp("cache") / "ganforge"  # not made yet, as on a first run
    monkeypatch.setenv("GANFORGE_CACHE", str(folder))
    forget_cache_paths()
    yield folder
    forget_cache_paths()


@pytest.fixture
def shared_cache(ganforge_cache, session_cache, monkeypatch) -> Path:
    """The session's cache instead, for tests that need the Inception network's ONNX export (seconds to
    make) but do not test the cache itself."""
    monkeypatch.setenv("GANFORGE_CACHE", str(session_cache))
    forget_cache_paths()
    return session_cache


@pytest.fixture(scope="session")
def digits_npz(tmp_path_factory) -> Path:
    """40 labelled digits as an .npz dataset: small enough that a few steps cross several epochs."""
    data = digits(40, 100)
    path = tmp_path_factory.mktemp("data") / "digits40.npz"
    np.savez(path, images=data.images[:, 0].numpy(), labels=data.labels.numpy())
    return path


@pytest.fixture(scope="session")
def dcgan_run(tmp_path_factory) -> Path:
    """A short real DCGAN run on mnist5k with the default recipe: 200 steps of batch 32.

    Fewer steps do not suffice: the first blobs G draws are further from digits (in cFD) than flat grey.
    """
    out = tmp_path_factory.mktemp("runs") / "dcgan"
    ganforge.train("dcgan", out=str(out), steps=200, batch_size=32, set=list(FAST), progress=False)
    return out


@pytest.fixture(scope="session")
def cgan_run(tmp_path_factory) -> Path:
    """A tiny class-conditional run (10 digit classes), for sampling with labels."""
    out = tmp_path_factory.mktemp("runs") / "cgan"
    train_fast("cgan", out, steps=3, batch_size=16)
    return out
