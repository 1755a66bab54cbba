"""A standard quality figure during every run: FID and KID (with its std) on any data but digits, logged to
metrics.jsonl and the summary with the time they took; eval.n by data; periodic evaluations kept to a share
of the training time, the final one always made."""
import json
import math

import pytest
from PIL import Image

import ganforge
from ganforge.data import load_dataset
from ganforge.metrics.training import DIGIT_N, INCEPTION_N, eval_n


@pytest.fixture
def colour_folder(tmp_path):
    """40 real colour images as PNG files: held-out emoji, with transparency, as a user's folder holds them."""
    folder = tmp_path / "icons"
    folder.mkdir()
    glyphs = load_dataset("openmoji:test", alpha=True).images[:40]
    for i, image in enumerate(glyphs):
        Image.fromarray(image.permute(1, 2, 0).numpy(), "RGBA").save(folder / f"icon_{i:02d}.png")
    return folder


def records(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_a_run_on_a_folder_of_colour_images_logs_fid_and_kid(colour_folder, tmp_path, shared_cache):
    out = tmp_path / "run"
    summary = ganforge.train("dcgan", data=str(colour_folder), out=str(out), steps=2, batch_size=8, progress=False,
                             set=["width=8", "eval.n=20", "eval.every=0", "sample.every=0", "log.every=1"])
    final = [r for r in records(out) if r.get("kind") == "eval"][-1]
    assert final["step"] == 2 and final["n"] == 20 and final["network"] == "inception-2015-12-05"
    assert math.isfinite(final["fid"]) and final["fid"] > 0
    assert math.isfinite(final["kid"]) and final["kid_std"] > 0  # subsets of half the images differ
    assert final["seconds"] > 0 and summary["eval_minutes"] > 0
    assert {"fid", "kid", "kid_std"} <= set(summary["metrics"])


def test_eval_n_zero_is_decided_by_the_data():
    digits = {"channels": 1, "native_size": 28, "classes": []}
    colour = {"channels": 3, "native_size": 64, "classes": []}
    assert eval_n(0, digits) == DIGIT_N and eval_n(0, colour) == INCEPTION_N
    assert eval_n(37, colour) == 37


def test_periodic_evaluations_stay_within_their_share_and_the_last_always_runs(tmp_path):
    out = tmp_path / "run"
    ganforge.train("dcgan", out=str(out), steps=6, batch_size=8, progress=False,
                   set=["width=8", "eval.metrics=cfd", "eval.n=16", "eval.every=1", "eval.share=1e-9",
                        "sample.every=0", "log.every=1"])
    steps = [r["step"] for r in records(out) if r.get("kind") == "eval"]
    assert steps == [1, 6]  # the first costs nothing yet; then evaluating has outrun its share until the end


@pytest.mark.parametrize("model, data, prefix", [("pix2pix", "openmoji-edges", ""),
                                                 ("cyclegan", "openmoji-edges-unpaired", "a2b_")])
def test_colour_translations_report_fid_of_outputs_beside_fid_of_inputs(model, data, prefix, tmp_path, shared_cache):
    out = tmp_path / "run"
    extra = ["n_blocks=1", "pool_size=4"] if model == "cyclegan" else []
    summary = ganforge.train(model, data=data, out=str(out), steps=2, batch_size=2, progress=False,
                             set=["width=4", "size=32", "eval.n=12", "eval.every=0", "sample.every=0", "log.every=1", *extra])
    figures = summary["metrics"]
    assert figures["n"] == 12
    assert math.isfinite(figures[f"{prefix}fid"]) and math.isfinite(figures[f"{prefix}fid_input"])
    assert figures[f"{prefix}fid"] != figures[f"{prefix}fid_input"]
