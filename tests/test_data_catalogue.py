"""The data catalogue: a named dataset is one entry (listed, loaded by name, its held-out split found), every
entry's kind says what its data holds, and the data package imports downwards without a cycle."""
import ast
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

import ganforge.data
from ganforge import cli
from ganforge.data.catalogue import find
from ganforge.data import (CATALOGUE, Dataset, ImageData, Kind, held_out, in_memory, list_datasets, load_dataset, register,
                           unregister)
from ganforge.data.mnist5k import mnist5k
from ganforge.errors import UserError

DATA = Path(ganforge.data.__file__).parent


def red(split: str, n: int) -> ImageData:
    """n real digits spread over the classes, drawn in red on black."""
    digits = mnist5k(split)
    pick = torch.arange(n) * len(digits) // n
    grey = digits.images[pick]  # (n, 1, 28, 28) uint8
    return ImageData(name="red-digits", images=torch.cat([grey, torch.zeros_like(grey), torch.zeros_like(grey)], dim=1),
                     labels=digits.labels[pick], classes=list(digits.classes))


@contextmanager
def registered(dataset: Dataset):
    register(dataset)
    try:
        yield dataset
    finally:
        unregister(dataset.name)


def test_a_new_dataset_is_one_entry_listed_loaded_and_held_out(capsys):
    entry = Dataset("red-digits", Kind.LABELS, "20 digits drawn in red", in_memory(lambda: red("train", 20)),
                    held_out=in_memory(lambda: red("test", 10)), credit="MNIST, CC BY-SA 3.0")
    with registered(entry):
        data = load_dataset("red-digits")
        assert data.images.shape == (20, 3, 28, 28) and data.labels.tolist() == [d // 2 for d in range(20)]
        assert data.images[:, 0].amax() == 255 and data.images[:, 1:].amax() == 0  # red on black
        big = load_dataset("red-digits", size=32, channels=1, needs="labels")
        assert big.images.shape == (20, 1, 32, 32)

        assert ("red-digits", "embedded", "20 digits drawn in red") in list_datasets()
        assert cli.main(["datasets"]) == 0
        assert any(line.split()[:2] == ["red-digits", "embedded"] for line in capsys.readouterr().out.splitlines())

        test = held_out("red-digits", size=16)
        assert test.images.shape == (10, 3, 16, 16) and test.labels.tolist() == list(range(10))
        assert torch.equal(held_out("red-digits").images[:, 0], red("test", 10).images[:, 0])
    assert "red-digits" not in CATALOGUE
    assert all(row[0] != "red-digits" for row in list_datasets())
    with pytest.raises(UserError, match=r"no dataset 'red-digits': not a dataset name \(mnist5k, "):
        load_dataset("red-digits")
    assert held_out("red-digits") is None


def test_names_are_unique_and_hold_no_split():
    entry = CATALOGUE["mnist5k"]
    with pytest.raises(ValueError, match="already has a dataset named 'mnist5k'"):
        register(entry)
    with pytest.raises(ValueError, match="':' separates"):
        register(Dataset("digits:red", Kind.IMAGES, "", entry.load))
    assert "digits:red" not in CATALOGUE


def test_a_held_out_split_named_by_its_dataset_name():
    entry = Dataset("red-digits-20", Kind.LABELS, "20 red digits", in_memory(lambda: red("train", 20)), held_out="mnist5k-test")
    with registered(entry):
        test = held_out("red-digits-20", size=14)
    assert test.images.shape == (1000, 1, 14, 14) and test.name == "mnist5k-test"


def test_every_kind_says_what_its_data_holds():
    """Each offline dataset and its held-out split hold what the entry's kind promises, at the same channels."""
    for name, dataset in CATALOGUE.items():
        assert isinstance(dataset.kind, Kind) and dataset.description and dataset.credit, name
        if isinstance(dataset.held_out, str):
            assert find(dataset.held_out) is not None, name  # a name, or NAME:SPLIT
        if dataset.download:
            assert held_out(name) is None  # never downloaded for the figures: the test's cache is empty
            continue
        data = load_dataset(name, needs=dataset.kind.value)
        holds = {Kind.IMAGES: True, Kind.LABELS: data.labels is not None and len(data.classes) > 1,
                 Kind.PAIRED: data.images_b is not None and data.paired,
                 Kind.UNPAIRED: data.images_b is not None and not data.paired,
                 Kind.ATTRIBUTES: data.attributes is not None}
        assert holds[dataset.kind], name
        test = held_out(name)
        if test is not None:
            assert test.channels == data.channels, name
            assert test.labels is not None or not name.startswith("mnist5k"), name  # the digit figures' truth
            assert (test.images_b is None) == (data.images_b is None) and (test.attributes is None) == (data.attributes is None)


# --- the package's imports -------------------------------------------------------------------------------------

def data_imports(path: Path):
    """(module, at top level) for every ganforge.data module a file imports, top level or inside a function."""
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("ganforge.data"):
            if node.module == "ganforge.data":
                for alias in node.names:  # `from ganforge.data import x` names a module or the package's own names
                    yield (alias.name if (DATA / f"{alias.name}.py").exists() else "__init__"), id(node) in top
            else:
                yield node.module.split(".")[2], id(node) in top
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("ganforge.data"):
                    parts = alias.name.split(".")
                    yield (parts[2] if len(parts) > 2 else "__init__"), id(node) in top


def test_the_data_package_imports_downwards_without_a_cycle():
    graph, nested = {}, []
    for path in sorted(DATA.glob("*.py")):
        found = list(data_imports(path))
        graph[path.stem] = {module for module, _ in found}
        nested += [f"{path.stem} -> {module}" for module, at_top in found if not at_top]
    assert nested == []  # an import inside a function would hide a cycle from the reader
    assert graph["catalogue"] >= {"mnist5k", "derived", "attributes", "two_domains", "public", "remote"}

    done, path = set(), []

    def visit(module):
        assert module not in path, "import cycle: " + " -> ".join(path[path.index(module):] + [module])
        if module in done:
            return
        path.append(module)
        for target in sorted(graph.get(module, ())):
            visit(target)
        path.pop()
        done.add(module)

    for module in graph:
        visit(module)
