"""Pretrained generators that ship with ganforge, and the places a model can be loaded from besides a run.

Every command that takes a run (sample, explore, serve, translate, eval) goes through `locate`, which also takes

    pretrained:NAME                          a generator file shipped in this package (`ganforge pretrained`)
    https://HOST/PATH.safetensors#sha256=HEX a generator file downloaded once into the cache, checked by SHA-256

The catalogue says how each shipped file was made: `tools/train_pretrained.py` trains every entry through
`ganforge.api.train` with the seed and step budget written here, and records the run's own figures in
`figures.json` beside the files. An entry without its file is planned, not shipped.
"""
from __future__ import annotations

import difflib
import json
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from ganforge.errors import UserError

PREFIX = "pretrained:"
FOLDER = Path(__file__).parent
FIGURES = "figures.json"  # written by tools/train_pretrained.py: NAME -> the run's figures, steps and file
MAX_FILE_BYTES = 5_000_000  # each shipped file, so the wheel stays small
MAX_TOTAL_BYTES = 25_000_000  # all of them together


@dataclass(frozen=True)
class Pretrained:
    """One catalogue entry: what to train, on which data, for how long, to make NAME.safetensors."""

    name: str
    family: str
    data: str
    steps: int  # the step budget (the reference's quality table where the family has a row)
    size: Optional[int] = None  # the image size trained at; None: the data's own
    seed: int = 0
    sets: Tuple[str, ...] = ()  # settings beside the family's defaults (narrower networks where the file would exceed 5 MB)

    def file(self, folder: Path = FOLDER) -> Path:
        return Path(folder) / f"{self.name}.safetensors"

    def train_sets(self) -> List[str]:
        return [*([f"size={self.size}"] if self.size else []), *self.sets]

    def command(self, steps: Optional[int] = None, extra: Sequence[str] = ()) -> str:
        """The `ganforge train` command this entry's run amounts to (with `extra` settings added)."""
        sets = [*self.train_sets(), *extra]
        return (f"ganforge train {self.family} --data {self.data} --steps {steps or self.steps} --seed {self.seed}"
                + (f" --set {' '.join(sets)}" if sets else ""))

    @property
    def licence(self) -> str:
        from ganforge.training.generator_file import data_licence

        return data_licence(self.data)


CATALOGUE: Dict[str, Pretrained] = {entry.name: entry for entry in (
    Pretrained("dcgan-mnist5k", "dcgan", "mnist5k", 2700),
    Pretrained("cgan-mnist5k", "cgan", "mnist5k", 4130),
    Pretrained("acgan-mnist5k", "acgan", "mnist5k", 3300),
    Pretrained("wgan-gp-mnist5k", "wgan-gp", "mnist5k", 2850),
    Pretrained("stylegan-mnist5k", "stylegan", "mnist5k", 5590),
    Pretrained("infogan-mnist5k", "infogan", "mnist5k", 3000),
    Pretrained("dcgan-openmoji64", "dcgan", "openmoji", 6000, size=64, sets=("batch_size=64",)),  # trained before the batch-16 rung
    # trained before the colour rung took batch 16 and ADA
    Pretrained("stylegan-openmoji64", "stylegan", "openmoji", 6000, size=64, sets=("batch_size=32", "augment.policy=none")),
    # U-Net width 16: at the default 32 its generator alone is 8.3 MB in fp16
    Pretrained("pix2pix-edges", "pix2pix", "mnist5k-edges", 1500, sets=("width=16",)),
    Pretrained("cyclegan-colored", "cyclegan", "mnist5k-colored", 4000),
    Pretrained("srgan-x4", "srgan", "mnist5k-sr4", 1200),
    Pretrained("inpaint-mnist5k", "inpaint", "mnist5k-inpaint", 1500, sets=("width=16",)),
    Pretrained("stargan-attrs", "stargan", "mnist5k-attrs", 1500),
)}


def figures(folder: Path = FOLDER) -> Dict[str, Dict]:
    """What tools/train_pretrained.py recorded for each trained entry: steps, seconds, the run's figures, bytes."""
    path = Path(folder) / FIGURES
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: unreadable ({e})") from None


def shipped(folder: Path = FOLDER) -> List[Pretrained]:
    """The entries whose file is present, in catalogue order."""
    return [entry for entry in CATALOGUE.values() if entry.file(folder).is_file()]


def find(name: str, folder: Path = FOLDER) -> Path:
    """The file of pretrained model NAME; one line with the names there are (or the closest) for any other."""
    entry = CATALOGUE.get(name)
    if entry is None:
        close = [n for n in CATALOGUE if n.startswith(f"{name}-")][:3] or difflib.get_close_matches(name, list(CATALOGUE), n=1)
        hint = f"did you mean {' or '.join(PREFIX + n for n in close)}? " if close else ""
        available = ", ".join(e.name for e in shipped(folder)) or "none shipped yet"
        raise UserError(f"no pretrained model '{name}': {hint}available: {available} (see `ganforge pretrained`)")
    path = entry.file(folder)
    if not path.is_file():
        raise UserError(f"pretrained model '{name}' is in the catalogue but its file does not ship with this ganforge "
                        f"yet (tools/train_pretrained.py --only {name} trains it); see `ganforge pretrained`")
    return path


# --- generator files by URL -----------------------------------------------------------------------------------
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def is_named(source: Union[str, Path]) -> bool:
    """Whether a source names a model by catalogue name or URL rather than by a path on this machine."""
    return isinstance(source, str) and (source.startswith(PREFIX) or is_url(source))


def fetch(url: str, progress: bool = True) -> Path:
    """The cached copy of the generator file at URL#sha256=HEX, downloaded on first use. A URL must pin the file's
    SHA-256 and name a .safetensors file: a download is only ever read as tensors, never unpickled."""
    from ganforge.data.download import cache_dir, download
    from ganforge.training import generator_file

    address, _, fragment = url.partition("#")
    pinned = urllib.parse.parse_qs(fragment).get("sha256", [""])[0]
    if not pinned:
        raise UserError(f"{url}: add the file's checksum as #sha256=HEX; a model is only downloaded with its SHA-256 "
                        f"pinned, so that the file loaded is the file meant")
    if not _SHA256.match(pinned):
        raise UserError(f"{url}: #sha256= takes the 64 hex digits of the file's SHA-256, got '{pinned}'")
    name = Path(urllib.parse.urlparse(address).path).name
    if not name.endswith(".safetensors"):
        raise UserError(f"{url}: only .safetensors generator files are loaded from a URL (never pickles such as "
                        f".pt or .pkl, which can run code)")
    dest = cache_dir() / "generators" / f"{pinned.lower()[:16]}-{name}"
    download(address, pinned, dest, progress=progress)
    if not generator_file.is_generator_file(dest):
        kind = "a safetensors file but not a ganforge generator file" if generator_file.header(dest) is not None else "not a safetensors file"
        dest.unlink(missing_ok=True)  # its checksum matched, but it is no model: nothing is kept
        raise UserError(f"{url}: {kind}; a URL must give a generator file (ganforge.api.save_generator writes one)")
    return dest


def locate(source: Union[str, Path]) -> Path:
    """The local path a run, checkpoint, generator file, pretrained:NAME or URL#sha256=HEX stands for."""
    if isinstance(source, str) and source.startswith(PREFIX):
        return find(source[len(PREFIX):])
    if isinstance(source, str) and is_url(source):
        return fetch(source)
    return Path(source).expanduser()
