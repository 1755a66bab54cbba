"""The bad-input zoo: every kind of bad input a user can hand a command, each with the outcome it must have.

A case lays real files in its own folder (PNG, JPEG and TIFF bytes written with Pillow, truncated copies,
crafted headers, links, pipes, damaged checkpoints) and names the command it runs. Its outcome is one of:

- Refused: exit code 2 and a single stderr line, ``ganforge: error: ...``, naming the thing that is wrong;
- Skipped: a bad file inside an otherwise good dataset; the run goes ahead (exit 0) and one warning line
  counts the files passed over and names the first;
- Accepted: an odd but valid input (16-bit, CMYK, palette, alpha, 1 x 1, 1 x 4000) trains with no warning.

The table runs through ``ganforge.cli.main`` (what the console script calls) in this process, counting the
package's log records as the stderr lines they would print. A few cases also run as real
``python -m ganforge`` processes, to show that no traceback reaches stderr and that --debug shows one.
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Union

import numpy as np
import pytest
from PIL import Image

import ganforge
from ganforge import cli
from ganforge.data.mnist5k import mnist5k
from ganforge.errors import UserError

from conftest import FAST

# Ten real digits, one per class (mnist5k is sorted by label): (10, 28, 28) uint8.
DIGITS = mnist5k("train").images[::400, 0].numpy()[:10]
TINY_GAN = ["hidden_g=[16]", "hidden_d=[16]"]


# --- outcomes ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Refused:
    pattern: str  # a regex the one error line must contain, naming the thing


@dataclass(frozen=True)
class Skipped:
    count: int  # files passed over
    first: str  # a regex for the first of them, as the warning names it


@dataclass(frozen=True)
class Accepted:
    channels: int  # of the data the run trained on, from its checkpoint
    size: int = 28


Outcome = Union[Refused, Skipped, Accepted]


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[["Place"], List]  # lays the files, returns the command's arguments
    outcome: Outcome
    xfail: str = ""  # why the outcome is not met yet (a fix outside this file's reach)
    not_as_root: bool = False  # root reads any file whatever its mode


CASES: List[Case] = []


def case(name: str, outcome: Outcome, **options):
    def register(build):
        CASES.append(Case(name, build, outcome, **options))
        return build

    return register


def check(outcome: Outcome, code: int, stdout: str, lines: List[str], place: "Place") -> None:
    """`lines` are the stderr lines (log records formatted as the command line prints them)."""
    assert not any("Traceback" in line for line in lines), lines
    if isinstance(outcome, Refused):
        assert code == 2, (code, lines)
        assert len(lines) == 1, lines
        assert lines[0].startswith("ganforge: error: "), lines
        assert re.search(outcome.pattern, lines[0]), (outcome.pattern, lines[0])
        assert stdout == ""
        return
    assert code == 0, (code, lines)
    if isinstance(outcome, Skipped):
        assert len(lines) == 1, lines
        plural = "" if outcome.count == 1 else "s"
        assert re.match(rf"ganforge: skipped {outcome.count} unreadable file{plural} in .* \(first: {outcome.first}", lines[0]), lines
    else:
        assert lines == []
    data = json.loads(place.checkpoint().read_text())["data"]  # the run finished and wrote its checkpoint
    if isinstance(outcome, Accepted):
        assert (data["channels"], data["size"]) == (outcome.channels, outcome.size), data


# --- the place a case works in -------------------------------------------------------------------------

class Place:
    """A case's own folder, its run folder (`out`), and the trained runs some cases need, built on first use."""

    def __init__(self, root: Path, request):
        self.root = root
        self.out = root / "run"
        self._request = request

    def folder(self, name: str = "data", n: int = 4) -> Path:
        """A folder holding n real digits as PNG files (0.png, 1.png, ...)."""
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(DIGITS[i]).save(folder / f"{i}.png")
        return folder

    def run_copy(self, fixture: str) -> Path:
        """A copy of a trained run's checkpoints in `out`; returns the newest sidecar."""
        shutil.copytree(self.run(fixture) / "checkpoints", self.out / "checkpoints")
        return self.checkpoint()

    def run(self, fixture: str) -> Path:
        return self._request.getfixturevalue(fixture)

    def checkpoint(self) -> Path:
        return sorted((self.out / "checkpoints").glob("step_*.json"))[-1]

    def checkpoint_of(self, fixture: str) -> Path:
        return sorted((self.run(fixture) / "checkpoints").glob("step_*.json"))[-1]

    def train(self, data, model: str = "gan", *sets: str) -> List:
        small = TINY_GAN if model == "gan" else ["width=8"]
        return ["train", model, "--data", data, "--steps", 1, "--batch-size", 2, "--out", self.out, "--quiet",
                "--set", *FAST, *small, *sets]

    def edit_sidecar(self, change: Callable[[dict], None]) -> Path:
        sidecar = self.checkpoint()
        meta = json.loads(sidecar.read_text())
        change(meta)
        sidecar.write_text(json.dumps(meta))
        return sidecar


# --- file makers -------------------------------------------------------------------------------------------

def encoded(array: np.ndarray, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt, **options)
    return buffer.getvalue()


def photo(height: int = 64, width: int = 64) -> np.ndarray:
    """Random colour: compresses badly, so cutting the file in half cuts the pixel data."""
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header(width: int, height: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))


def bomb() -> bytes:
    """A valid PNG header claiming 100000 x 100000 grey pixels (10 GB decoded), and no pixel data."""
    return png_header(100_000, 100_000) + png_chunk(b"IEND", b"")


def corrupt_png() -> bytes:
    """A well-formed 8 x 8 header whose pixel data is not zlib."""
    return png_header(8, 8) + png_chunk(b"IDAT", b"this is not zlib data at all") + png_chunk(b"IEND", b"")


def with_file(name: str, content: Union[bytes, Callable[[Path], None]]):
    """A build step: four good digits plus one file, written as bytes or by a function of its path."""
    def build(place: Place) -> Path:
        folder = place.folder()
        target = folder / name
        if callable(content):
            content(target)
        else:
            target.write_bytes(content)
        return folder

    return build


def only_file(name: str, content: bytes):
    """A build step: a folder holding just this one file."""
    def build(place: Place) -> Path:
        folder = place.root / "data"
        folder.mkdir()
        (folder / name).write_bytes(content)
        return folder

    return build


# === the zoo ============================================================================================

# --- a bad file inside a good dataset: skipped and counted -----------------------------------------------

for _name, _file, _content, _first in [
    ("zero-byte file", "empty.png", b"", r"empty\.png: the file is empty"),
    ("text file with a .png name", "notes.png", b"my shopping list\n", r"notes\.png: not an image"),
    ("truncated PNG", "cut.png", encoded(photo())[:3000], r"cut\.png: corrupt or truncated PNG"),
    ("truncated JPEG", "cut.jpg", encoded(photo(), "JPEG")[:1500], r"cut\.jpg: corrupt or truncated JPEG"),
    ("corrupt PNG pixel data", "bad.png", corrupt_png(), r"bad\.png: corrupt or truncated PNG"),
    ("decompression-bomb header", "bomb.png", bomb(), r"bomb\.png: refusing a possible decompression bomb"),
    ("broken symlink", "gone.png", lambda p: os.symlink(p.parent / "nowhere.png", p), r"gone\.png: no such file"),
    ("named pipe with a .png name", "pipe.png", lambda p: os.mkfifo(p), r"pipe\.png: not a regular file"),
]:
    case(f"in a dataset: {_name}", Skipped(1, _first))(
        lambda place, build=with_file(_file, _content): place.train(build(place)))


@case("in a dataset: chmod-000 file", Skipped(1, r"locked\.png: permission denied"), not_as_root=True)
def _locked(place):
    folder = with_file("locked.png", encoded(DIGITS[5]))(place)
    (folder / "locked.png").chmod(0)
    return place.train(folder)


@case("in a dataset: two files linked to each other", Skipped(2, r"a_loop\.png: .*symbolic links"))
def _file_link_loop(place):
    folder = place.folder()
    os.symlink("b_loop.png", folder / "a_loop.png")
    os.symlink("a_loop.png", folder / "b_loop.png")
    return place.train(folder)


@case("in a zip dataset: a damaged member", Skipped(1, r"1\.png: damaged zip entry"))
def _damaged_zip_member(place):
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED) as zipped:
        for i in range(4):
            zipped.writestr(f"{i}.png", encoded(DIGITS[i]))
    data = bytearray(raw.getvalue())
    start = data.index(b"IDAT", data.index(b"1.png"))  # inside member 1's stored bytes: its CRC no longer matches
    data[start + 10 : start + 20] = b"\0" * 10
    (place.root / "digits.zip").write_bytes(bytes(data))
    return place.train(place.root / "digits.zip")


@case("in a cyclegan folder: an unreadable file in trainB/", Skipped(1, r"x\.png: not an image"))
def _cyclegan_side_with_a_bad_file(place):
    place.folder("data/trainA")
    place.folder("data/trainB")
    (place.root / "data" / "trainB" / "x.png").write_text("junk")
    return place.train(place.root / "data", "cyclegan")


# --- odd but valid images: read, and trained on --------------------------------------------------------

def _sixteen_bit(path):
    Image.fromarray(DIGITS[7].astype(np.uint16) * 257).save(path)  # mode I;16


def _palette_with_transparency(path):
    Image.fromarray(DIGITS[7]).convert("P").save(path, transparency=0)


def _rgba(path):
    Image.fromarray(np.dstack([DIGITS[7]] * 3 + [np.full((28, 28), 200, np.uint8)])).save(path)


def _cmyk_jpeg(path):
    Image.new("CMYK", (28, 28), (0, 255, 255, 0)).save(path, "JPEG", quality=95)


def _sixteen_bit_tiff(path):
    Image.fromarray(DIGITS[7].astype(np.uint16) * 257).save(path, "TIFF")


for _name, _file, _writer, _channels in [
    ("16-bit grey PNG", "deep.png", _sixteen_bit, 1),
    ("16-bit grey TIFF", "deep.tif", _sixteen_bit_tiff, 1),
    ("palette PNG with transparency", "palette.png", _palette_with_transparency, 1),
    ("RGBA PNG", "alpha.png", _rgba, 3),
    ("CMYK JPEG", "print.jpg", _cmyk_jpeg, 3),
    ("1 x 1 image sorted first", "0000.png", lambda p: Image.fromarray(np.full((1, 1), 9, np.uint8)).save(p), 1),
    ("1 x 4000 strip sorted first", "0000.png", lambda p: Image.fromarray(np.full((1, 4000), 9, np.uint8)).save(p), 1),
]:
    case(f"odd but valid: {_name}", Accepted(_channels))(
        lambda place, build=with_file(_file, _writer): place.train(build(place)))


@case("odd but valid: a folder linking to itself", Accepted(1))
def _folder_link_loop(place):
    folder = place.folder()
    os.symlink(folder, folder / "again")
    return place.train(folder)


# --- nothing good to read: refused ---------------------------------------------------------------------

@case("dataset of only a truncated image", Refused(r"no readable images in .*data: all 1 failed \(first: cut\.png: corrupt"))
def _only_truncated(place):
    return place.train(only_file("cut.png", encoded(photo())[:3000])(place))


@case("dataset folder with no images", Refused(r"no image files in .*data"))
def _empty_folder(place):
    return place.train(only_file("readme.txt", b"images to follow")(place))


@case("a single image as the dataset", Refused(r"one\.png is a single image"))
def _single_image(place):
    (place.root / "one.png").write_bytes(encoded(DIGITS[0]))
    return place.train(place.root / "one.png")


@case("a .zip cut short", Refused(r"digits\.zip is not a readable zip file"))
def _zip_cut_short(place):
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as zipped:
        zipped.writestr("0.png", encoded(DIGITS[0]))
    (place.root / "digits.zip").write_bytes(raw.getvalue()[:-30])
    return place.train(place.root / "digits.zip")


@case(".npz of float images", Refused(r"floats\.npz: 'images' must be uint8"))
def _npz_of_floats(place):
    np.savez(place.root / "floats.npz", images=DIGITS.astype(np.float32) / 255)
    return place.train(place.root / "floats.npz")


@case(".npz that is a text file", Refused(r"notes\.npz: not a readable \.npz file"))
def _npz_of_text(place):
    (place.root / "notes.npz").write_text("not numpy")
    return place.train(place.root / "notes.npz")


@case("a missing dataset path", Refused(r"no dataset '.*nowhere'"))
def _missing_data(place):
    return place.train(place.root / "nowhere")


# --- wrong two-domain layouts ----------------------------------------------------------------------------

@case("pix2pix: trainA/ without trainB/", Refused(r"has trainA/ but no trainB/"))
def _trainA_alone(place):
    place.folder("data/trainA")
    return place.train(place.root / "data", "pix2pix")


@case("pix2pix: A/ and B/ with different file names", Refused(r"same file names: A/3 has no match in B/"))
def _parallel_names_differ(place):
    place.folder("data/A")
    place.folder("data/B", n=3)
    return place.train(place.root / "data", "pix2pix")


@case("pix2pix: a folder of single images, not A|B pairs", Refused(r"0\.png is 28 x 28 px, no wider than tall"))
def _square_images(place):
    return place.train(place.folder(), "pix2pix")


@case("pix2pix: aligned pairs only under test/", Refused(r"no training images outside test/"))
def _held_out_only(place):
    (place.root / "data" / "test").mkdir(parents=True)
    Image.fromarray(np.concatenate([DIGITS[0], DIGITS[1]], axis=1)).save(place.root / "data" / "test" / "0.png")
    return place.train(place.root / "data", "pix2pix")


@case("cyclegan: trainB/ of only unreadable files", Refused(r"no readable images in .*trainB: all 1 failed"))
def _unreadable_side(place):
    place.folder("data/trainA")
    (place.root / "data" / "trainB").mkdir()
    (place.root / "data" / "trainB" / "x.png").write_bytes(b"")
    return place.train(place.root / "data", "cyclegan")


@case("pix2pix on one-domain data", Refused(r"pix2pix needs two image domains"))
def _one_domain(place):
    return place.train("mnist5k", "pix2pix")


# --- bad flags and values ----------------------------------------------------------------------------------

def train_with(*flags):
    return lambda place: ["train", "gan", "--out", place.out, *flags]


for _name, _flags, _pattern in [
    ("--steps -1", ["--steps", "-1"], r"'steps' must be greater than 0, got -1"),
    ("--steps ten", ["--steps", "ten"], r"--steps: invalid int value: 'ten'"),
    ("--batch-size 0", ["--batch-size", "0"], r"'batch_size' must be greater than 0, got 0"),
    ("--seed 2^40", ["--seed", str(2**40)], r"seed must be a whole number from 0 to 2147483647"),
    ("--device tpu", ["--device", "tpu"], r"--device: invalid choice: 'tpu'"),
    ("--set unknown.key=1", ["--set", "unknown.key=1"], r"unknown setting 'unknown'"),
    ("--set optim.G.lr=abc", ["--set", "optim.G.lr=abc"], r"'optim\.G\.lr' must be a number, got 'abc'"),
    ("--set optim.G.lr=nan", ["--set", "optim.G.lr=nan"], r"'optim\.G\.lr' must be a finite number"),
    ("--set optim.D.betas=[0.5]", ["--set", "optim.D.betas=[0.5]"], r"optim\.D\.betas must be two numbers"),
    ("--set hidden_g=[64,x]", ["--set", "hidden_g=[64,x]"], r"'hidden_g\[1\]' must be an integer, got 'x'"),
    ("--set without =", ["--set", "steps"], r"--set expects KEY=VALUE, got 'steps'"),
]:
    case(f"flag: {_name}", Refused(_pattern))(train_with(*_flags))

# Model hyperparameters are validated by each model family.
case("flag: --set hidden_g=[0]", Refused(r"hidden_g must list one or more layer widths of at least 1"))(
    train_with("--steps", "1", "--set", "hidden_g=[0]"))
case("flag: --set dropout=2", Refused(r"dropout must be in \[0, 1\), got 2"))(train_with("--steps", "1", "--set", "dropout=2"))


@case("flag: --set width=0 for dcgan", Refused(r"width and z_dim must be at least 1, got width=0"))
def _zero_width(place):
    return ["train", "dcgan", "--steps", 1, "--out", place.out, "--quiet", "--set", *FAST, "width=0"]


def with_config(text: Optional[str]):
    def build(place):
        path = place.root / "settings.yaml"
        path.mkdir() if text is None else path.write_text(text)
        return ["train", "gan", "--config", path, "--out", place.out]

    return build


case("broken YAML --config", Refused(r"settings\.yaml: not valid YAML at line 4"))(
    with_config("steps: 3\noptim:\n  G: {lr: 0.1\nseed: 1\n"))
case("--config that is a YAML list", Refused(r"settings\.yaml: expected a mapping of settings"))(with_config("- steps\n- 3\n"))
case("--config naming a folder", Refused(r"settings\.yaml is a folder"))(with_config(None))
case("--config with an unknown key", Refused(r"settings\.yaml: unknown setting 'optim\.G\.learning_rate'"))(
    with_config("optim:\n  G:\n    learning_rate: 0.1\n"))


# --- wrong checkpoints ---------------------------------------------------------------------------------

@case("--resume onto a run of another model", Refused(r"holds a cgan run, not gan"))
def _resume_other_model(place):
    place.run_copy("cgan_run")
    return ["train", "gan", "--resume", "--steps", 5, "--out", place.out, "--quiet"]


@case("--resume from a newer checkpoint format", Refused(r"format 99, newer than this ganforge .* reads; upgrade ganforge"))
def _resume_newer(place):
    place.run_copy("cgan_run")
    place.edit_sidecar(lambda meta: meta.update(format_version=99, ganforge_version="99.0"))
    return ["train", "cgan", "--resume", "--steps", 5, "--out", place.out, "--quiet"]


@case("sample a checkpoint cut short", Refused(r"step_000003\.safetensors: corrupt or unreadable checkpoint tensors"))
def _tensors_cut_short(place):
    tensors = place.run_copy("cgan_run").with_suffix(".safetensors")
    tensors.write_bytes(tensors.read_bytes()[:1000])
    return ["sample", place.out, "--n", 2, "--npz", place.root / "s.npz"]


@case("sample a checkpoint holding another model's tensors", Refused(r"G does not fit this cgan configuration"))
def _tensors_of_another_model(place):
    sidecar = place.run_copy("cgan_run")
    shutil.copy(place.checkpoint_of("pix2pix_run").with_suffix(".safetensors"), sidecar.with_suffix(".safetensors"))
    return ["sample", place.out, "--n", 2, "--npz", place.root / "s.npz"]


@case("sample a sidecar with a text format_version", Refused(r"corrupt checkpoint sidecar \(format_version 'one'"))
def _text_version(place):
    place.run_copy("cgan_run")
    place.edit_sidecar(lambda meta: meta.update(format_version="one"))
    return ["sample", place.out, "--n", 2]


@case("sample a sidecar whose data is not a mapping", Refused(r"corrupt checkpoint sidecar \(data is not a mapping"))
def _data_not_mapping(place):
    place.run_copy("cgan_run")
    place.edit_sidecar(lambda meta: meta.update(data="digits"))
    return ["sample", place.out, "--n", 2]


@case("sample a sidecar written before a setting existed", Accepted(1))
def _setting_missing(place):
    place.run_copy("cgan_run")
    place.edit_sidecar(lambda meta: meta["config"].pop("dropout"))
    return ["sample", place.out, "--n", 2, "--npz", place.root / "s.npz"]


# --- sample, eval and translate on wrong inputs ----------------------------------------------------------

@case("sample a folder that holds no run", Refused(r"no checkpoint in '.*data'"))
def _sample_no_run(place):
    return ["sample", place.folder()]


@case("sample a pix2pix run", Refused(r"pix2pix translates images rather than sampling"))
def _sample_translator(place):
    return ["sample", place.run("pix2pix_run"), "--n", 2]


@case("sample --grid onto a folder", Refused(r"cannot write .*grids: it is a folder"))
def _grid_onto_folder(place):
    (place.root / "grids").mkdir()
    return ["sample", place.run("cgan_run"), "--n", 2, "--grid", place.root / "grids"]


@case("sample --npz onto a folder", Refused(r"cannot write .*npzs: it is a folder"))
def _npz_onto_folder(place):
    (place.root / "npzs").mkdir()
    return ["sample", place.run("cgan_run"), "--n", 2, "--npz", place.root / "npzs"]


@case("sample --device tpu", Refused(r"unknown --device 'tpu': use cpu, cuda or cuda:N"))
def _sample_bad_device(place):
    return ["sample", place.run("cgan_run"), "--n", 2, "--device", "tpu"]


@case("sample --seed 2^70", Refused(r"--seed must be between 0 and 2147483647"))
def _sample_huge_seed(place):
    return ["sample", place.run("cgan_run"), "--n", 2, "--seed", str(2**70), "--npz", place.root / "s.npz"]


@case("sample --n 10^12", Refused(r"--n must be between 1 and 100,000"))
def _sample_too_many(place):
    return ["sample", place.run("cgan_run"), "--n", str(10**12)]


@case("eval --n 10^9", Refused(r"--n must be between 2 and 100,000"))
def _eval_too_many(place):
    return ["eval", place.run("cgan_run"), "--metrics", "cfd", "--n", str(10**9)]


@case("eval a folder that holds no run", Refused(r"no checkpoint in '.*data'"))
def _eval_no_run(place):
    return ["eval", place.folder(), "--metrics", "cfd"]


@case("eval --metrics fidd", Refused(r"unknown metric 'fidd'"))
def _eval_unknown_metric(place):
    return ["eval", place.run("cgan_run"), "--metrics", "fidd"]


@case("eval --seed -1", Refused(r"--seed must be a whole number from 0"))
def _eval_negative_seed(place):
    return ["eval", place.run("cgan_run"), "--metrics", "cfd", "--n", 10, "--seed", -1]


@case("eval --images of a text file with a .png name", Refused(r"notes\.png is a single image"))
def _eval_images_not_a_set(place):
    (place.root / "notes.png").write_text("hello")
    return ["eval", "--images", place.root / "notes.png", "--real", "mnist5k", "--metrics", "cfd"]


@case("translate with a noise GAN", Refused(r"holds a cgan model, which samples from noise"))
def _translate_with_noise_gan(place):
    return ["translate", place.run("cgan_run"), place.folder() / "0.png", "--out", place.out]


@case("translate a text file with a .png name", Refused(r"cannot read image .*notes\.png: not an image"))
def _translate_text(place):
    (place.root / "notes.png").write_text("hello")
    return ["translate", place.run("pix2pix_run"), place.root / "notes.png", "--out", place.out]


@case("translate a decompression-bomb header", Refused(r"bomb\.png: refusing a possible decompression bomb"))
def _translate_bomb(place):
    (place.root / "bomb.png").write_bytes(bomb())
    return ["translate", place.run("pix2pix_run"), place.root / "bomb.png", "--out", place.out]


@case("translate a missing file", Refused(r"no such input file or folder: .*gone\.png"))
def _translate_missing(place):
    return ["translate", place.run("pix2pix_run"), place.root / "gone.png", "--out", place.out]


# === running the zoo ===========================================================================================

@pytest.fixture(scope="module")
def pix2pix_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "pix2pix"
    ganforge.train("pix2pix", data="mnist5k-edges", out=str(out), steps=1, batch_size=2, set=[*FAST, "width=8"], progress=False)
    return out


def run_main(argv, capfd, caplog):
    """(exit code, stdout, stderr lines) of `ganforge ARGV` in this process; log records count as the lines they print."""
    caplog.clear()
    code = cli.main([str(a) for a in argv])
    out, err = capfd.readouterr()
    logged = [f"ganforge: {r.getMessage()}" for r in caplog.records if r.name.startswith("ganforge")]
    return code, out, err.splitlines() + logged


def _param(c: Case):
    marks = []
    if c.xfail:
        marks.append(pytest.mark.xfail(reason=c.xfail, strict=True))
    if c.not_as_root:
        marks.append(pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads a chmod-000 file"))
    return pytest.param(c, id=c.name, marks=marks)


@pytest.mark.parametrize("zoo_case", [_param(c) for c in CASES])
def test_bad_input(zoo_case, tmp_path, request, capfd, caplog):
    place = Place(tmp_path, request)
    code, stdout, lines = run_main(zoo_case.build(place), capfd, caplog)
    check(zoo_case.outcome, code, stdout, lines, place)


def test_the_zoo_keeps_at_least_30_cases():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    assert len([c for c in CASES if not c.xfail]) >= 30
    kinds = {type(c.outcome) for c in CASES}
    assert kinds == {Refused, Skipped, Accepted}


def test_debug_in_process_raises_the_user_error(tmp_path):
    with pytest.raises(UserError, match="'steps' must be greater than 0"):
        cli.main(["--debug", "train", "gan", "--steps", "-1", "--out", str(tmp_path)])


# --- the same cases as real processes ------------------------------------------------------------------------

# A refusal, a run with a skipped file, and (below) the refusal again under --debug: each process pays for
# importing torch, so only these three run this way.
PROCESS_CASES = ["broken YAML --config", "in a dataset: zero-byte file"]


@pytest.fixture(scope="module")
def processes(tmp_path_factory, request):
    """Start every process at once (their start-up overlaps), then collect (code, stdout, stderr, place) by name."""
    by_name = {c.name: c for c in CASES}
    jobs = {name: by_name[name] for name in PROCESS_CASES}
    jobs["--debug"] = by_name["broken YAML --config"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = {}
    for name, c in jobs.items():
        place = Place(tmp_path_factory.mktemp("process"), request)
        argv = [str(a) for a in c.build(place)]
        if name == "--debug":
            argv = ["--debug", *argv]
        started[name] = (subprocess.Popen([sys.executable, "-m", "ganforge", *argv], stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True, env=env), place)
    results = {}
    for name, (proc, place) in started.items():
        stdout, stderr = proc.communicate(timeout=300)
        results[name] = (proc.returncode, stdout, stderr, place)
    return results


@pytest.mark.parametrize("name", PROCESS_CASES)
def test_as_a_process_no_traceback_reaches_stderr(processes, name):
    code, stdout, stderr, place = processes[name]
    outcome = next(c.outcome for c in CASES if c.name == name)
    check(outcome, code, stdout, stderr.splitlines(), place)


def test_as_a_process_debug_shows_the_traceback(processes):
    code, _, stderr, _ = processes["--debug"]
    assert code not in (0, 2)
    assert "Traceback (most recent call last)" in stderr and "UserError" in stderr and "not valid YAML at line 4" in stderr
