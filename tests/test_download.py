"""The downloader and the remote datasets, against a real HTTP server on 127.0.0.1 serving files in the true formats."""
import dataclasses
import gzip
import hashlib
import io
import re
import tarfile
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from ganforge.data import remote
from ganforge.data.download import cache_dir, download, download_recorded
from ganforge.data import CATALOGUE, load_dataset
from ganforge.data.remote import RemoteDataset, RemoteFile, load_remote, read_idx
from ganforge.errors import UserError
from support_http import FileServer, refused_url


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


PAYLOAD = bytes(range(256)) * 40  # 10 KiB


# --- the downloader


def test_full_download_is_atomic_and_checked(tmp_path):
    with FileServer({"/d/blob.bin": PAYLOAD}) as server:
        dest = download(server.url + "/d/blob.bin", _sha(PAYLOAD), tmp_path / "cache" / "blob.bin", progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert sorted(p.name for p in dest.parent.iterdir()) == ["blob.bin"]  # no .part left behind
    assert server.requests == [("/d/blob.bin", None)]


def test_a_complete_file_is_not_fetched_twice(tmp_path):
    dest = tmp_path / "blob.bin"
    with FileServer({"/blob.bin": PAYLOAD}) as server:
        download(server.url + "/blob.bin", _sha(PAYLOAD), dest, progress=False)
        download(server.url + "/blob.bin", _sha(PAYLOAD), dest, progress=False)
    assert len(server.requests) == 1
    with refused_url() as offline:  # even with no network at all
        assert download(offline, _sha(PAYLOAD), dest, progress=False).read_bytes() == PAYLOAD


def test_a_partial_download_resumes_with_a_range_request(tmp_path):
    dest = tmp_path / "blob.bin"
    (tmp_path / "blob.bin.part").write_bytes(PAYLOAD[:3000])
    with FileServer({"/blob.bin": PAYLOAD}) as server:
        download(server.url + "/blob.bin", _sha(PAYLOAD), dest, progress=False)
    assert server.requests == [("/blob.bin", "bytes=3000-")]
    assert server.bytes_sent == len(PAYLOAD) - 3000
    assert dest.read_bytes() == PAYLOAD and not (tmp_path / "blob.bin.part").exists()


def test_a_broken_off_download_keeps_its_part_and_resumes(tmp_path):
    dest = tmp_path / "blob.bin"
    with FileServer({"/blob.bin": PAYLOAD}, cut_after=4000) as server:
        with pytest.raises(UserError, match="broke off.*run again to resume"):
            download(server.url + "/blob.bin", _sha(PAYLOAD), dest, progress=False)
    assert (tmp_path / "blob.bin.part").read_bytes() == PAYLOAD[:4000] and not dest.exists()
    with FileServer({"/blob.bin": PAYLOAD}) as server:
        download(server.url + "/blob.bin", _sha(PAYLOAD), dest, progress=False)
    assert server.requests == [("/blob.bin", "bytes=4000-")] and dest.read_bytes() == PAYLOAD


def test_a_server_ignoring_range_restarts_from_zero(tmp_path):
    dest = tmp_path / "blob.bin"
    (tmp_path / "blob.bin.part").write_bytes(PAYLOAD[:3000])
    with FileServer({"/blob.bin": PAYLOAD}, honour_range=False) as server:
        download(server.url + "/blob.bin", _sha(PAYLOAD), dest, progress=False)
    assert server.requests == [("/blob.bin", "bytes=3000-")]
    assert dest.read_bytes() == PAYLOAD  # the full body replaced the part instead of being appended


def test_a_part_that_is_already_whole_is_kept(tmp_path):
    dest = tmp_path / "blob.bin"
    (tmp_path / "blob.bin.part").write_bytes(PAYLOAD)
    with FileServer({"/blob.bin": PAYLOAD}) as server:  # answers 416 to a range starting at the end
        download(server.url + "/blob.bin", _sha(PAYLOAD), dest, progress=False)
    assert server.bytes_sent == 0 and dest.read_bytes() == PAYLOAD


def test_checksum_mismatch_deletes_the_part_and_names_the_url(tmp_path):
    dest = tmp_path / "blob.bin"
    with FileServer({"/blob.bin": PAYLOAD[:-1] + b"X"}) as server:
        with pytest.raises(UserError, match=re.escape(server.url + "/blob.bin") + ".*checksum|checksum.*" + re.escape(server.url)):
            download(server.url + "/blob.bin", _sha(PAYLOAD), dest, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_offline_says_so_and_where_to_put_the_file(tmp_path):
    dest = tmp_path / "blob.bin"
    with refused_url("/blob.bin") as url:
        with pytest.raises(UserError) as caught:
            download(url, _sha(PAYLOAD), dest, progress=False)
    message = str(caught.value)
    assert url in message and "offline" in message and str(dest) in message and "\n" not in message


def test_mirrors_are_tried_in_order(tmp_path):
    with FileServer({"/second/blob.bin": PAYLOAD}) as server:
        with refused_url("/blob.bin") as offline:
            urls = [offline, server.url + "/first/blob.bin", server.url + "/second/blob.bin"]
            download(urls, _sha(PAYLOAD), tmp_path / "blob.bin", progress=False)
    assert [path for path, _ in server.requests] == ["/first/blob.bin", "/second/blob.bin"]
    assert (tmp_path / "blob.bin").read_bytes() == PAYLOAD
    with FileServer({}) as server:
        with pytest.raises(UserError, match="404"):
            download(server.url + "/nothing", _sha(PAYLOAD), tmp_path / "nothing", progress=False)


def test_no_checksum_downloads_once_and_resumes_unchecked(tmp_path):
    dest = tmp_path / "blob.bin"
    with FileServer({"/blob.bin": PAYLOAD}, cut_after=4000) as server:
        with pytest.raises(UserError, match="broke off"):
            download(server.url + "/blob.bin", None, dest, progress=False)
    with FileServer({"/blob.bin": PAYLOAD}) as server:
        assert download(server.url + "/blob.bin", None, dest, progress=False).read_bytes() == PAYLOAD
        download(server.url + "/blob.bin", None, dest, progress=False)  # present: not fetched again
    assert server.requests == [("/blob.bin", "bytes=4000-")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob.bin"]


def test_recorded_checksum_is_trusted_on_first_use_then_enforced(tmp_path):
    dest = tmp_path / "blob.bin"
    with FileServer({"/blob.bin": PAYLOAD}) as server:
        download_recorded(server.url + "/blob.bin", dest, progress=False)
        assert (tmp_path / "blob.bin.sha256").read_text().split() == [_sha(PAYLOAD), "blob.bin"]
        dest.write_bytes(b"damaged in the cache")
        server.files["/blob.bin"] = PAYLOAD[::-1]  # the mirror now serves another file
        with pytest.raises(UserError, match="checksum mismatch"):
            download_recorded(server.url + "/blob.bin", dest, progress=False)
        server.files["/blob.bin"] = PAYLOAD
        assert download_recorded(server.url + "/blob.bin", dest, progress=False).read_bytes() == PAYLOAD
    assert len(server.requests) == 3


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "elsewhere"))
    assert cache_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("GANFORGE_CACHE")
    assert cache_dir().parts[-2:] == (".cache", "ganforge")


def test_every_test_has_its_own_cache_away_from_the_users(ganforge_cache):
    assert cache_dir() == ganforge_cache and not ganforge_cache.is_relative_to(Path.home() / ".cache")


# --- fixtures in the true formats


def _idx(array: np.ndarray) -> bytes:
    """uint8 array -> gzipped IDX bytes (magic 0x0000 08 rank, big-endian sizes)."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)


@pytest.fixture(scope="module")
def digits():
    with resources.files("ganforge.data").joinpath("assets/mnist5k.npz").open("rb") as stream:
        data = np.load(stream)
        pick = np.concatenate([np.flatnonzero(data["labels"] == d)[:2] for d in range(10)])  # 20 images
        return data["images"][pick], data["labels"][pick]


def _mnist_files(digits):
    images, labels = digits
    return {
        "train-images-idx3-ubyte.gz": _idx(images[:12]),
        "train-labels-idx1-ubyte.gz": _idx(labels[:12]),
        "t10k-images-idx3-ubyte.gz": _idx(images[12:]),
        "t10k-labels-idx1-ubyte.gz": _idx(labels[12:]),
    }


def _cifar_archive(records_per_batch=2, seed=0):
    """A cifar-10-binary.tar.gz with the real layout; returns (bytes, {batch name: (images, labels)})."""
    rng = np.random.default_rng(seed)
    buffer, batches = io.BytesIO(), {}
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin", "batches.meta.txt"]
        for name in names:
            if name.endswith(".txt"):
                data = b"airplane\nautomobile\n"
            else:
                labels = rng.integers(0, 10, records_per_batch, dtype=np.uint8)
                images = rng.integers(0, 256, (records_per_batch, 3, 32, 32), dtype=np.uint8)
                batches[name] = (images, labels)
                data = np.concatenate([labels[:, None], images.reshape(records_per_batch, -1)], axis=1).tobytes()
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue(), batches


def _pinned_to(name, files):
    """The named dataset with its files' checksums replaced by those of ``files`` (name -> bytes)."""
    spec = CATALOGUE[name].load
    pinned = {
        split: tuple(RemoteFile(f.name, _sha(files[f.name])) for f in needed) for split, needed in spec.files.items()
    }
    return dataclasses.replace(spec, files=pinned)


# --- remote datasets end to end


def test_mnist_from_a_local_mirror(tmp_path, monkeypatch, digits):
    files = _mnist_files(digits)
    spec = _pinned_to("mnist", files)
    with FileServer({f"/mirror/{k}": v for k, v in files.items()}) as server:
        train = load_remote(spec, cache=tmp_path, base_url=server.url + "/mirror/")
        test = load_remote(spec, split="test", cache=tmp_path, base_url=server.url + "/mirror")
        again = load_remote(spec, cache=tmp_path, base_url=server.url + "/mirror")
    images, labels = digits
    assert train.images.shape == (12, 1, 28, 28) and test.images.shape == (8, 1, 28, 28)
    assert np.array_equal(train.images[:, 0].numpy(), images[:12])
    assert train.labels.tolist() == labels[:12].tolist() and test.labels.tolist() == labels[12:].tolist()
    assert train.classes == [str(d) for d in range(10)] and train.native_size == 28
    assert len(server.requests) == 4  # two files per split, none fetched twice
    assert np.array_equal(again.images.numpy(), train.images.numpy())

    resized = load_remote(spec, size=32, channels=3, cache=tmp_path, base_url="http://unused.invalid/")
    assert resized.images.shape == (12, 3, 32, 32) and resized.native_size == 28


def test_fashion_mnist_mirror_from_the_environment(tmp_path, monkeypatch, digits):
    files = _mnist_files(digits)
    pinned = dataclasses.replace(CATALOGUE["fashion-mnist"], load=_pinned_to("fashion-mnist", files))
    monkeypatch.setitem(CATALOGUE, "fashion-mnist", pinned)
    with FileServer({f"/fm/{k}": v for k, v in files.items()}) as server:
        monkeypatch.setenv("GANFORGE_DATASET_MIRROR", server.url + "/fm")
        data = load_dataset("fashion-mnist:test")  # through the catalogue, into the test's own cache
    assert data.classes[0] == "T-shirt/top" and data.classes[9] == "Ankle boot" and len(data) == 8


def test_cifar10_binary_archive(tmp_path, monkeypatch):
    archive, batches = _cifar_archive()
    spec = _pinned_to("cifar10", {"cifar-10-binary.tar.gz": archive})
    with FileServer({"/c/cifar-10-binary.tar.gz": archive}) as server:
        train = load_remote(spec, cache=tmp_path, base_url=server.url + "/c")
        test = load_remote(spec, split="test", cache=tmp_path, base_url=server.url + "/c")
    assert len(server.requests) == 1  # one archive holds both splits
    assert train.images.shape == (10, 3, 32, 32) and test.images.shape == (2, 3, 32, 32)
    expected = np.concatenate([batches[f"data_batch_{i}.bin"][0] for i in range(1, 6)])
    assert np.array_equal(train.images.numpy(), expected)  # channel planes R, G, B in order
    assert test.labels.tolist() == batches["test_batch.bin"][1].tolist()
    assert train.classes[0] == "airplane" and train.classes[9] == "truck" and train.native_size == 32


def test_a_mirror_must_serve_the_real_files(tmp_path, digits):
    """With the real pinned checksums, a mirror serving anything else is refused."""
    files = _mnist_files(digits)
    with FileServer({f"/m/{k}": v for k, v in files.items()}) as server:
        with pytest.raises(UserError, match="checksum mismatch for .*/m/train-images-idx3-ubyte.gz"):
            load_remote(CATALOGUE["mnist"].load, cache=tmp_path, base_url=server.url + "/m")
    assert not (tmp_path / "train-images-idx3-ubyte.gz").exists()


def test_real_pins_are_complete():
    remote = {name: entry.load for name, entry in CATALOGUE.items() if isinstance(entry.load, RemoteDataset)}
    assert set(remote) == {"mnist", "fashion-mnist", "cifar10"} and all(CATALOGUE[name].download for name in remote)
    for spec in remote.values():
        assert len(spec.classes) == 10 and spec.mirrors
        for needed in spec.files.values():
            for f in needed:
                assert re.fullmatch(r"[0-9a-f]{64}", f.sha256), f
    assert remote["cifar10"].files["train"][0].name == "cifar-10-binary.tar.gz"


def test_unknown_names_and_splits(tmp_path):
    with pytest.raises(UserError, match="no dataset 'mnsit'.*mnist"):
        load_dataset("mnsit")
    with pytest.raises(UserError, match="no split 'valid'"):
        load_dataset("mnist:valid")


# --- malformed files name the file


def test_malformed_idx_files(tmp_path, digits):
    images, labels = digits
    bad_magic = tmp_path / "magic.gz"
    bad_magic.write_bytes(gzip.compress(b"\x00\x00\x08\x02" + (2).to_bytes(4, "big") * 2 + b"\0" * 4))
    with pytest.raises(UserError, match="magic.gz.*magic number"):
        read_idx(bad_magic, 3)
    short = tmp_path / "short.gz"
    short.write_bytes(_idx(images[:3])[:-30] + b"")  # a cut gzip stream
    with pytest.raises(UserError, match="short.gz"):
        read_idx(short, 3)
    lying = tmp_path / "lying.gz"
    lying.write_bytes(gzip.compress(gzip.decompress(_idx(images[:3]))[:-5]))
    with pytest.raises(UserError, match="lying.gz is malformed"):
        read_idx(lying, 3)
    plain = tmp_path / "plain.gz"
    plain.write_bytes(b"not gzip")
    with pytest.raises(UserError, match="plain.gz is not a readable gzip"):
        read_idx(plain, 1)
    (tmp_path / "i.gz").write_bytes(_idx(images[:3]))
    (tmp_path / "l.gz").write_bytes(_idx(labels[:2]))
    paths = {"train-images-idx3-ubyte.gz": tmp_path / "i.gz", "train-labels-idx1-ubyte.gz": tmp_path / "l.gz"}
    with pytest.raises(UserError, match="3 images but .*l.gz 2 labels"):
        remote.parse_idx(paths, "train")


def test_malformed_cifar_archives(tmp_path):
    archive, _ = _cifar_archive()
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as source:
        members = [(m, source.extractfile(m).read()) for m in source.getmembers()]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for member, data in members:
            if member.name.endswith("data_batch_3.bin"):
                continue
            if member.name.endswith("test_batch.bin"):
                data = data[:-1]
                member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    broken = tmp_path / "cifar-10-binary.tar.gz"
    broken.write_bytes(buffer.getvalue())
    with pytest.raises(UserError, match="cifar-10-binary.tar.gz.*lacks data_batch_3.bin"):
        remote.parse_cifar({"cifar-10-binary.tar.gz": broken}, "train")
    with pytest.raises(UserError, match="test_batch.bin is malformed"):
        remote.parse_cifar({"cifar-10-binary.tar.gz": broken}, "test")
    broken.write_bytes(b"\x1f\x8b not really")
    with pytest.raises(UserError, match="not a readable tar.gz"):
        remote.parse_cifar({"cifar-10-binary.tar.gz": broken}, "test")
