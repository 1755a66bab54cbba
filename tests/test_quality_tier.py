"""The quality tier: every family trains a fixed number of steps at a fixed seed on its default data and must
reach an end-of-run figure well past chance, so that a change which breaks learning fails the suite.

Each row keeps the family's loss, data and algorithm and shrinks only what sets the cost (widths, blocks,
batch, steps, eval.n); the paper learning rates of gan, lsgan and wgan need thousands of steps, so those rows
say which rate they take instead. A threshold sits about halfway between the figure the row reaches and
chance; for cFD, which spans orders of magnitude, halfway on a log scale (the geometric mean), since the
linear midpoint would pass a generator that draws a single digit.
"""
from __future__ import annotations

import importlib.util
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Tuple

import pytest

import ganforge

# Every row: one thread (the suite shares the machine), figures only at the end, from 500 samples or held-out examples.
BASE = ["threads=1", "log.every=0", "sample.every=0", "eval.every=0", "checkpoint.every=0", "eval.n=500"]

# The CPU recipe of dcgan's optimisers, for the families whose paper rates learn too slowly for a short run.
FAST_ADAM = ["optim.G.lr=2e-3", "optim.D.lr=4e-3", "optim.G.betas=[0,0.99]", "optim.D.betas=[0,0.99]"]


@dataclass(frozen=True)
class Row:
    model: str
    steps: int
    batch_size: int
    sets: Tuple[str, ...]
    # figure -> (">" or "<", threshold, chance): the figure must be above (or below) the threshold. Chance is the
    # untrained G's figure: one class in ten for digit accuracies, a coin flip for attributes, no gain over bicubic
    # for srgan, a cFD near uniform noise's; inpaint's untrained G already passes the known pixels on.
    checks: Dict[str, Tuple[str, float, float]] = field(default_factory=dict)


TIER = [
    Row("gan", 2000, 32, ("hidden_g=[128,256,512]", "hidden_d=[256,128]"), {"cfd": ("<", 600.0, 930.0)}),
    Row("dcgan", 300, 64, ("width=16",), {"cfd": ("<", 300.0, 930.0)}),
    Row("lsgan", 400, 64, ("width=16", *FAST_ADAM), {"cfd": ("<", 330.0, 930.0)}),
    Row("wgan", 200, 32, ("width=16", "optim.G.lr=5e-4", "optim.D.lr=5e-4"), {"cfd": ("<", 400.0, 930.0)}),
    Row("wgan-gp", 300, 64, ("width=16",), {"cfd": ("<", 340.0, 930.0)}),
    Row("stylegan", 150, 32, (), {"cfd": ("<", 430.0, 930.0)}),
    Row("cgan", 300, 64, (), {"acc": (">", 0.4, 0.1)}),
    Row("acgan", 200, 64, ("width=16",), {"acc": (">", 0.43, 0.1)}),
    Row("infogan", 300, 64, ("width=16",), {"cfd": ("<", 500.0, 930.0)}),
    Row("pix2pix", 200, 16, ("width=16",), {"acc": (">", 0.35, 0.1), "psnr": (">", 10.8, 6.3)}),
    Row("inpaint", 200, 16, ("width=16",), {"psnr_hole": (">", 7.7, 6.6), "cfd": ("<", 51.0, 79.0)}),
    Row("cyclegan", 250, 4, ("width=16", "n_blocks=2"), {"a2b_acc": (">", 0.5, 0.1), "b2a_acc": (">", 0.5, 0.1)}),
    Row("srgan", 500, 16, ("width=16", "n_blocks=2"), {"psnr_gain": (">", 0.9, 0.0)}),
    Row("stargan", 150, 8, ("width=16", "n_blocks=2", "d_width=32", "eval.n=200"), {"attr_acc": (">", 0.67, 0.5)}),
]


def figures(metrics: Dict) -> Dict[str, float]:
    """The run's end-of-run metrics, with srgan's gain over the bicubic baseline."""
    out = dict(metrics)
    if "psnr" in out and "psnr_bicubic" in out:
        out["psnr_gain"] = out["psnr"] - out["psnr_bicubic"]
    return out


def train_row(row: Row, out, seed: int = 0, extra: Tuple[str, ...] = ()) -> Dict[str, float]:
    summary = ganforge.train(row.model, out=str(out), steps=row.steps, batch_size=row.batch_size, seed=seed,
                             set=[*BASE, *row.sets, *extra], progress=False)
    return figures(summary["metrics"])


def failures(row: Row, got: Dict[str, float]) -> list:
    """One line per check the figures miss (a missing or non-finite figure misses)."""
    missed = []
    for name, (op, threshold, chance) in row.checks.items():
        value = got.get(name, math.nan)
        ok = math.isfinite(value) and (value > threshold if op == ">" else value < threshold)
        if not ok:
            missed.append(f"{row.model}: {name} {value:.4g} is not {op} {threshold:g} (chance {chance:g})")
    return missed


@pytest.mark.parametrize("row", TIER, ids=[r.model for r in TIER])
def test_family_learns(row, tmp_path):
    got = train_row(row, tmp_path / row.model)
    assert not failures(row, got), "; ".join(failures(row, got))


def test_tier_covers_every_family():
    from ganforge.models import MODELS

    assert sorted(r.model for r in TIER) == sorted(MODELS)


def test_a_generator_that_does_not_learn_fails(tmp_path):
    """The thresholds discriminate: the same run with G's learning rate near zero misses them."""
    row = next(r for r in TIER if r.model == "acgan")
    got = train_row(row, tmp_path / "frozen", extra=("optim.G.lr=1e-9",))
    assert failures(row, got)


def quality_script():
    """benchmarks/quality.py, which renders the README's quality table from benchmarks/results/quality.json."""
    name = "ganforge_quality_script"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "benchmarks" / "quality.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # its dataclasses look their module up by name
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_readme_quality_table_is_rendered_from_the_results():
    quality = quality_script()
    table = quality.readme_table(quality.README.read_text())
    assert table == quality.render(quality.load_results()), "run `python benchmarks/quality.py --render`"
    assert set(quality.load_results()) == set(quality.BY_NAME), "every row of the script has results"


def test_quality_rows_are_step_based_and_quick_runs_write_elsewhere():
    quality = quality_script()
    for row in quality.ROWS:
        assert "--minutes" not in row.command() and f"--steps {row.steps}" in row.command()
    assert quality.results_path(Path("scratch"), quick=True) != quality.RESULTS


def test_first_step_below_the_goal_is_the_start_of_the_last_run_below_it():
    first = quality_script().first_step_below
    cfds = [(500, 30.0), (1000, 19.0), (1500, 21.0), (2000, 18.0), (2500, 12.0)]
    assert first([{"kind": "eval", "step": s, "cfd": c} for s, c in cfds], 20.0) == 2000
    assert first([{"kind": "eval", "step": s, "cfd": c} for s, c in cfds[:3]], 20.0) is None
