"""Two-domain data: the tasks derived from mnist5k, the folder layouts users have, the batch sampler's second
domain, and the public pix2pix / CycleGAN sets against a real HTTP server on 127.0.0.1."""
import dataclasses
import hashlib
import io
import logging
import tarfile
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data import CATALOGUE, held_out, load_dataset
from ganforge.data.base import to_float
from ganforge.data.derived import edge_map, load as load_derived
from ganforge.data.mnist5k import mnist5k
from ganforge.data.public import _fetch as fetch_archive, load_public
from ganforge.data.sampler import BatchSampler
from ganforge.data.two_domains import load_two_domains
from ganforge.errors import UserError
from ganforge.metrics.digits import grey_digits
from support_http import FileServer, refused_url

DIGITS = mnist5k("all").images[:, 0].numpy()  # (5000, 28, 28) uint8, sorted by label


def _png(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _colour(index: int) -> np.ndarray:
    """A real digit tinted into RGB (H, W, 3)."""
    d = DIGITS[index]
    return np.stack([d, d // 2, 255 - d], axis=-1)


# --- the derived tasks -------------------------------------------------------------------------------

def test_derived_tasks_are_deterministic_and_shaped():
    for name, shapes in {"mnist5k-edges": ((1, 28), (1, 28)), "mnist5k-colored": ((1, 28), (3, 28)),
                         "mnist5k-sr4": ((1, 7), (1, 28)), "mnist5k-inpaint": ((2, 28), (1, 28))}.items():
        a, b = load_derived(name), load_derived(name)
        assert torch.equal(a.images, b.images) and torch.equal(a.images_b, b.images_b)
        assert (a.images.shape[1], a.images.shape[-1]) == shapes[0] and (a.images_b.shape[1], a.images_b.shape[-1]) == shapes[1]
        assert a.labels is None  # the training sets are unconditional
        test = load_derived(name, "test")
        assert test.paired and len(test) == 1000 and test.labels.bincount().tolist() == [100] * 10
        info = a.info()
        assert info["channels_b"] == shapes[1][0] and info["size_b"] == shapes[1][1]


def test_edge_maps_are_binary_outlines_of_the_paired_digit():
    data = load_derived("mnist5k-edges")
    edges, digits = data.images.float() / 255, data.images_b.float() / 255
    assert set(data.images.unique().tolist()) == {0, 255}
    near_ink = torch.nn.functional.max_pool2d(digits, 3, 1, 1) > 0.2  # within a pixel of the stroke
    assert (edges.bool() & ~near_ink).sum() == 0
    # every digit has an outline, and an outline is not the filled digit
    assert (edges.flatten(1).sum(1) > 10).all() and ((edges > 0) != (digits > 0.5)).float().mean() > 0.05


def test_colored_halves_are_disjoint_and_readable():
    data = load_derived("mnist5k-colored")
    train = mnist5k("train")
    assert len(data.images) == len(data.images_b) == 2000 and not data.paired
    first_half = torch.cat([train.images[train.labels == d][:200] for d in range(10)])
    assert torch.equal(data.images, first_half)
    # each coloured digit's ink (stretched luma) matches a digit of the second half, never one of A's
    ink = (grey_digits(to_float(data.images_b[::10])) > 0).flatten(1).float()  # (200, 784)
    digits = (train.images > 127).flatten(1).float()  # (4000, 784)
    overlap = ink @ digits.t() / (ink.sum(1, keepdim=True) + digits.sum(1) - ink @ digits.t())  # IoU
    best = overlap.argmax(dim=1)
    used_by_a = torch.cat([torch.nonzero(train.labels == d).flatten()[:200] for d in range(10)])
    assert not torch.isin(best, used_by_a).any()
    assert (overlap.max(dim=1).values > 0.7).float().mean() > 0.95


def test_coloured_test_digits_keep_their_class_for_the_judge():
    from ganforge.metrics.digits import digit_metrics

    test = load_derived("mnist5k-colored", "test")
    assert test.images_b.shape == (1000, 3, 28, 28)
    judged = digit_metrics(grey_digits(to_float(test.images_b)), test.labels)
    assert judged["accuracy"] >= 0.97


def test_sr4_inputs_are_the_downsampled_targets_and_inpaint_holes_are_marked():
    sr = load_derived("mnist5k-sr4")
    pooled = torch.nn.functional.avg_pool2d(sr.images_b.float(), 4)
    assert (pooled - sr.images.float()).abs().mean() < 12  # bicubic with antialiasing is close to the 4x4 mean
    inpaint = load_derived("mnist5k-inpaint")
    holed, mask, full = inpaint.images[:, :1], inpaint.images[:, 1:] > 0, inpaint.images_b
    assert set(inpaint.images[:, 1].unique().tolist()) == {0, 255}
    assert (holed[mask] == 128).all() and torch.equal(holed[~mask], full[~mask])
    share = mask.float().mean(dim=(1, 2, 3))
    assert share.min() >= (7 * 7) / 784 - 1e-6 and share.max() <= (14 * 14) / 784 + 1e-6


def test_optdigits_task_pairs_two_real_styles_with_labels_on_both_held_out_sides():
    from ganforge.data.optdigits import _arrays, framed
    from ganforge.metrics.digits import digit_metrics

    data = load_derived("mnist5k-optdigits")
    assert not data.paired and data.labels is None and data.labels_b is None  # the training sides are unconditional
    assert data.images.shape == (1497, 1, 28, 28) and torch.equal(data.images_b, mnist5k("train").images)
    test = load_derived("mnist5k-optdigits", "test")
    assert not test.paired and len(test) == 300 and len(test.images_b) == 1000
    assert test.labels.bincount().tolist() == [30] * 10 and torch.equal(test.labels_b, mnist5k("test").labels)
    # the scans are 8 x 8 counts 0-16 framed as MNIST frames its digits: a 20-px box in the middle of 28 px
    counts, labels, held_out = _arrays()
    assert counts.shape == (1797, 8, 8) and counts.max() == 16 and held_out.sum() == 300
    assert test.images[:, :, :4].max() == 0 and test.images[:, :, 24:].max() == 0
    assert torch.equal(framed(torch.from_numpy(counts[held_out])), test.images)
    # the same digits in another hand: the MNIST classifier reads most of them, far from all (it reads MNIST at 99%)
    reading = digit_metrics(test.images, test.labels)["accuracy"]
    assert 0.5 < reading < 0.9


# --- folder layouts ----------------------------------------------------------------------------------

def test_cyclegan_layout_is_unpaired_with_its_own_channels(tmp_path):
    for i in range(5):
        _write(tmp_path / "trainA" / f"a{i}.png", DIGITS[i * 500])
    for i in range(3):
        _write(tmp_path / "trainB" / f"b{i}.jpg", _colour(i * 700))
    for i in range(2):
        _write(tmp_path / "testA" / f"t{i}.png", DIGITS[i])
        _write(tmp_path / "testB" / f"t{i}.png", _colour(i))
    data = load_dataset(str(tmp_path), needs="unpaired")
    assert data.images.shape == (5, 1, 28, 28) and data.images_b.shape == (3, 3, 28, 28) and not data.paired
    assert np.array_equal(data.images[2, 0].numpy(), DIGITS[1000])
    test = held_out(str(tmp_path))
    assert test.images.shape == (2, 1, 28, 28) and test.images_b.shape == (2, 3, 28, 28)


def test_parallel_folders_pair_by_name(tmp_path):
    order = [3, 1, 4, 0, 2]
    for i in order:
        _write(tmp_path / "A" / f"x{i}.png", DIGITS[i * 400])
        _write(tmp_path / "B" / f"x{i}.jpg" if i % 2 else tmp_path / "B" / f"x{i}.png", 255 - DIGITS[i * 400])
    data = load_dataset(str(tmp_path), needs="paired")
    assert data.paired and len(data) == 5
    assert np.array_equal(data.images[1, 0].numpy(), DIGITS[400])  # sorted by name: x0, x1, ...
    # each B is the inverse of its A (loosely: some are JPEG)
    assert ((255 - data.images.float() - data.images_b.float()).abs().mean(dim=(1, 2, 3)) < 8).all()


def test_cyclegan_layout_pairs_by_name_for_pix2pix_and_names_the_stray_file(tmp_path):
    for name in ("p", "q"):
        _write(tmp_path / "trainA" / f"{name}.png", DIGITS[0])
        _write(tmp_path / "trainB" / f"{name}.png", DIGITS[1])
    _write(tmp_path / "trainB" / "stray.png", DIGITS[2])
    assert len(load_dataset(str(tmp_path), needs="unpaired").images_b) == 3
    with pytest.raises(UserError, match=r"trainB/stray has no match in trainA"):
        load_dataset(str(tmp_path), needs="paired")


def test_aligned_images_split_into_halves(tmp_path):
    for i in range(3):
        _write(tmp_path / "train" / f"{i}.png", np.concatenate([DIGITS[i * 900], 255 - DIGITS[i * 900]], axis=1))
    _write(tmp_path / "val" / "0.png", np.concatenate([DIGITS[7], DIGITS[8]], axis=1))
    data = load_dataset(str(tmp_path), needs="paired")
    assert data.images.shape == data.images_b.shape == (3, 1, 28, 28) and data.paired
    assert np.array_equal(data.images[1, 0].numpy(), DIGITS[900]) and np.array_equal(data.images_b[1, 0].numpy(), 255 - DIGITS[900])
    test = held_out(str(tmp_path))
    assert np.array_equal(test.images_b[0, 0].numpy(), DIGITS[8])


def test_bad_two_domain_data_gives_one_clear_line(tmp_path):
    _write(tmp_path / "u" / "trainA" / "a.png", DIGITS[0])
    (tmp_path / "u" / "trainB").mkdir()
    with pytest.raises(UserError, match=r"trainB holds no images"):
        load_dataset(str(tmp_path / "u"), needs="unpaired")
    _write(tmp_path / "odd" / "x.png", np.zeros((28, 57), dtype=np.uint8))
    with pytest.raises(UserError, match=r"x\.png: 57 px wide.*even width"):
        load_dataset(str(tmp_path / "odd"), needs="paired")
    _write(tmp_path / "plain" / "d.png", DIGITS[0])  # a folder of single images is no aligned layout
    with pytest.raises(UserError, match=r"d\.png is 28 x 28 px, no wider than tall.*trainA/ \+ trainB/"):
        load_dataset(str(tmp_path / "plain"), needs="unpaired")
    _write(tmp_path / "half" / "trainA" / "a.png", DIGITS[0])
    with pytest.raises(UserError, match=r"no trainB/"):
        load_dataset(str(tmp_path / "half"), needs="unpaired")


def test_unreadable_files_in_a_side_are_skipped_and_counted(tmp_path, caplog):
    for i in range(3):
        _write(tmp_path / "trainA" / f"{i}.png", DIGITS[i])
        _write(tmp_path / "trainB" / f"{i}.png", DIGITS[i + 10])
    (tmp_path / "trainB" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    data = load_dataset(str(tmp_path), needs="unpaired")
    assert data.skipped == 1 and len(data.images_b) == 3
    assert "broken.png" in caplog.text


def test_aligned_images_beside_a_test_folder_train_without_it(tmp_path):
    pair = lambda i: np.concatenate([DIGITS[i], 255 - DIGITS[i]], axis=1)  # noqa: E731
    for i in range(3):
        _write(tmp_path / "set" / f"{i}.png", pair(i * 100))
    _write(tmp_path / "set" / "test" / "t.png", pair(999))
    data = load_dataset(str(tmp_path / "set"), needs="paired")
    assert len(data) == 3 and not any(np.array_equal(a[0].numpy(), DIGITS[999]) for a in data.images)
    assert np.array_equal(held_out(str(tmp_path / "set")).images[0, 0].numpy(), DIGITS[999])
    _write(tmp_path / "only" / "test" / "t.png", pair(0))  # a held-out split alone is nothing to train on
    with pytest.raises(UserError, match=r"no training images outside test/.*train/"):
        load_dataset(str(tmp_path / "only"), needs="paired")


def test_a_side_of_only_unreadable_files_is_one_error_and_no_warning(tmp_path, caplog):
    _write(tmp_path / "trainA" / "a.png", DIGITS[0])
    (tmp_path / "trainB").mkdir()
    (tmp_path / "trainB" / "x.png").write_text("not a picture")
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        with pytest.raises(UserError, match=r"no readable images in .*trainB: all 1 failed \(first: x\.png"):
            load_dataset(str(tmp_path), needs="unpaired")
    assert not [r for r in caplog.records if r.name == "ganforge"]


def test_default_size_is_the_common_one_not_a_stray_thumbnail(tmp_path):
    _write(tmp_path / "trainA" / "0_thumb.png", DIGITS[0][:7, :7])  # first in sorted order
    for i in range(1, 4):
        _write(tmp_path / "trainA" / f"{i}.png", DIGITS[i])
        _write(tmp_path / "trainB" / f"{i}.png", DIGITS[i + 10])
    data = load_dataset(str(tmp_path), needs="unpaired")
    assert data.images.shape == (4, 1, 28, 28) and data.images_b.shape == (3, 1, 28, 28)


# --- the sampler's second domain --------------------------------------------------------------------

def test_paired_batches_keep_pairs_and_unpaired_ones_resume_exactly():
    edges = load_derived("mnist5k-edges")
    sampler = BatchSampler(edges, 16, seed=3, device=torch.device("cpu"))
    for batch in [sampler.next() for _ in range(3)] + [sampler.fixed_batch(8)]:  # A: the edge map of the B beside it
        assert torch.equal(batch["image"], to_float(edge_map(((batch["image_b"] + 1) * 127.5).round().to(torch.uint8))))

    colored = load_derived("mnist5k-colored")
    colored.images_b = colored.images_b[:1500]  # sides of different lengths run through their epochs apart
    a = BatchSampler(colored, 64, seed=1, device=torch.device("cpu"))
    for _ in range(70):  # A (31 batches an epoch) is in its 3rd epoch, B (23 an epoch) in its 4th
        a.next()
    state = a.state_dict()
    assert set(state) == {"epoch", "position", "epoch_b", "position_b"} and state["epoch_b"] > state["epoch"]
    b = BatchSampler(colored, 64, seed=1, device=torch.device("cpu"))
    b.load_state_dict(state)
    for _ in range(30):
        x, y = a.next(), b.next()
        assert torch.equal(x["image"], y["image"]) and torch.equal(x["image_b"], y["image_b"])
    # the sample grids' fixed batch: the same examples wherever the sampler is, and the order left alone
    moved = a.state_dict()
    fixed, first = a.fixed_batch(8), BatchSampler(colored, 64, seed=1, device=torch.device("cpu")).fixed_batch(8)
    assert torch.equal(fixed["image"], first["image"]) and torch.equal(fixed["image_b"], first["image_b"])
    assert a.state_dict() == moved
    x, y = a.next(), b.next()
    assert torch.equal(x["image"], y["image"]) and torch.equal(x["image_b"], y["image_b"])


def test_unpaired_sides_are_shuffled_independently():
    data = load_derived("mnist5k-colored")
    batch = BatchSampler(data, 2000, seed=0, device=torch.device("cpu")).next()

    def positions(images, pool):  # where each batch image sits in the data set
        flat = to_float(pool).flatten(1)
        return torch.tensor([int(torch.nonzero((flat == row).all(1))[0]) for row in images.flatten(1)])

    order_a, order_b = positions(batch["image"][:50], data.images), positions(batch["image_b"][:50], data.images_b)
    assert not torch.equal(order_a, order_b)


# --- public datasets, against a real server ---------------------------------------------------------

def _cyclegan_zip(name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for side, count in (("trainA", 4), ("trainB", 3), ("testA", 2), ("testB", 2)):
            for i in range(count):
                z.writestr(f"{name}/{side}/{i}.png", _png(DIGITS[i * 100] if side.endswith("A") else _colour(i * 100)))
    return buffer.getvalue()


def _pix2pix_tar(name: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for split, count in (("train", 3), ("val", 1)):
            for i in range(count):
                body = _png(np.concatenate([DIGITS[i * 300], 255 - DIGITS[i * 300]], axis=1))
                info = tarfile.TarInfo(f"{name}/{split}/{i}.png")
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


def test_a_pinned_cyclegan_set_downloads_once_and_unpacks(tmp_path, monkeypatch):
    archive = _cyclegan_zip("horse2zebra")
    spec = dataclasses.replace(CATALOGUE["horse2zebra"].load, sha256=hashlib.sha256(archive).hexdigest())
    with FileServer({"/sets/horse2zebra.zip": archive}) as server:
        data = load_public(spec, cache=tmp_path, base_url=server.url + "/sets", needs="unpaired")
        again = load_public(spec, split="test", cache=tmp_path, base_url=server.url + "/sets")
    assert data.images.shape == (4, 1, 28, 28) and data.images_b.shape == (3, 3, 28, 28)
    assert again.images.shape == (2, 1, 28, 28) and again.name == "horse2zebra:test"
    assert server.requests == [("/sets/horse2zebra.zip", None)]  # the second load used the cache


def test_an_unpinned_set_records_its_checksum_on_first_download(tmp_path):
    archive = _pix2pix_tar("facades")
    with FileServer({"/p/facades.tar.gz": archive}) as server:
        data = load_public(CATALOGUE["facades"].load, cache=tmp_path, base_url=server.url + "/p")
        record = (tmp_path / "facades.tar.gz.sha256").read_text().split()[0]
        assert record == hashlib.sha256(archive).hexdigest()
        assert data.paired and np.array_equal(data.images_b[1, 0].numpy(), 255 - DIGITS[300])
        # a damaged cached archive is fetched again and checked against the recorded checksum
        (tmp_path / "facades.tar.gz").write_bytes(b"garbage")
        server.files["/p/facades.tar.gz"] = archive[:-10] + b"0123456789"
        with pytest.raises(UserError, match="checksum mismatch"):
            fetch_archive([server.url + "/p/facades.tar.gz"], None, tmp_path / "facades.tar.gz")


def test_offline_and_hostile_archives_give_one_clear_line(tmp_path, monkeypatch):
    with refused_url("/facades.tar.gz") as url:
        with pytest.raises(UserError, match="offline"):
            load_public(CATALOGUE["facades"].load, cache=tmp_path / "c", base_url=url.rsplit("/", 1)[0])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("../escape.png", _png(DIGITS[0]))
    evil = buffer.getvalue()
    spec = dataclasses.replace(CATALOGUE["apple2orange"].load, sha256=hashlib.sha256(evil).hexdigest())
    with FileServer({"/apple2orange.zip": evil}) as server:
        with pytest.raises(UserError, match="refusing the entry '../escape.png'"):
            load_public(spec, cache=tmp_path / "e", base_url=server.url)
    assert not (tmp_path / "escape.png").exists() and not (tmp_path / "e" / "files").exists()
