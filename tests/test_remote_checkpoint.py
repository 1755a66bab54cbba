"""Generator files by URL#sha256=HEX: downloaded once into the cache from a real HTTP server on 127.0.0.1, checked,
and only ever read as safetensors."""
import hashlib
import io

import pytest
import torch
from safetensors.torch import save

import ganforge
from ganforge import api, cli
from ganforge.errors import UserError
from support_http import FileServer

FAST = ["log.every=1", "sample.every=0", "eval.metrics=none", "checkpoint.every=0", "width=8"]


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    """(path, bytes, sha256) of a narrow DCGAN's generator file after a few real steps."""
    root = tmp_path_factory.mktemp("remote")
    ganforge.train("dcgan", out=str(root / "run"), steps=4, batch_size=8, set=FAST, progress=False)
    path = api.save_generator(root / "run", root / "dcgan.safetensors")
    data = path.read_bytes()
    return path, data, hashlib.sha256(data).hexdigest()


def _cached(cache):
    folder = cache / "generators"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_a_pinned_url_is_downloaded_once_and_then_read_from_the_cache(generator, ganforge_cache, tmp_path, capsys):
    path, data, sha = generator
    with FileServer({"/models/dcgan.safetensors": data}) as server:
        url = f"{server.url}/models/dcgan.safetensors#sha256={sha}"
        g = api.load(url)
        assert torch.equal(g.sample(8, seed=2), api.load(path).sample(8, seed=2))
        assert g.generator_only and len(server.requests) == 1
        assert _cached(ganforge_cache) == [f"{sha[:16]}-dcgan.safetensors"]
        assert cli.main(["sample", url, "--n", "4", "--grid", str(tmp_path / "grid.png")]) == 0
        api.load(url.replace(sha, sha.upper()))
        assert len(server.requests) == 1  # the cache answered: no new request
    assert (tmp_path / "grid.png").is_file()


def test_a_checksum_mismatch_is_refused_and_nothing_is_kept(generator, ganforge_cache, capsys):
    _, data, _ = generator
    wrong = hashlib.sha256(b"another file").hexdigest()
    with FileServer({"/dcgan.safetensors": data}) as server:
        with pytest.raises(UserError, match=f"checksum mismatch for .*expected sha256 {wrong}"):
            api.load(f"{server.url}/dcgan.safetensors#sha256={wrong}")
        assert cli.main(["sample", f"{server.url}/dcgan.safetensors#sha256={wrong}"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert _cached(ganforge_cache) == []


def test_a_url_must_pin_a_well_formed_checksum(generator, capsys):
    _, data, sha = generator
    with FileServer({"/dcgan.safetensors": data}) as server:
        with pytest.raises(UserError, match="add the file's checksum as #sha256=HEX"):
            api.load(f"{server.url}/dcgan.safetensors")
        with pytest.raises(UserError, match="64 hex digits"):
            api.load(f"{server.url}/dcgan.safetensors#sha256={sha[:40]}")
        assert cli.main(["sample", f"{server.url}/dcgan.safetensors"]) == 2
        assert server.requests == []
    assert "ganforge: error:" in capsys.readouterr().err


def test_only_safetensors_generator_files_are_read_never_pickles(generator, ganforge_cache, tmp_path):
    _, data, sha = generator
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(3)}, buffer)
    pickled = buffer.getvalue()
    tensors_only = save({"w": torch.zeros(3)})
    files = {"/model.pt": pickled, "/disguised.safetensors": pickled, "/plain.safetensors": tensors_only}
    with FileServer(files) as server:
        with pytest.raises(UserError, match="only .safetensors generator files .*never pickles"):
            api.load(f"{server.url}/model.pt#sha256={hashlib.sha256(pickled).hexdigest()}")
        assert server.requests == []  # refused by its name, before any download
        with pytest.raises(UserError, match="disguised.safetensors.*: not a safetensors file"):
            api.load(f"{server.url}/disguised.safetensors#sha256={hashlib.sha256(pickled).hexdigest()}")
        with pytest.raises(UserError, match="a safetensors file but not a ganforge generator file"):
            api.load(f"{server.url}/plain.safetensors#sha256={hashlib.sha256(tensors_only).hexdigest()}")
    assert _cached(ganforge_cache) == []
