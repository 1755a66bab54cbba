"""benchmarks/bench_recipes.py: how it reads a run's losses, and that the README shows its results file."""
from __future__ import annotations

import json
import math
from pathlib import Path

from support_scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


def bench_recipes():
    return load_script("bench_recipes")


def write_losses(path: Path, d_losses, g_losses=None) -> Path:
    g_losses = g_losses or [math.log(2)] * len(d_losses)
    rows = [{"kind": "train", "step": 25 * (i + 1), "D/loss": d, "G/loss": g} for i, (d, g) in enumerate(zip(d_losses, g_losses))]
    rows.insert(3, {"kind": "eval", "step": 75, "fid": 100.0})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_frozen_steps_is_the_longest_stretch_with_both_losses_at_chance(tmp_path):
    script = bench_recipes()
    chance = 2 * math.log(2)
    # steps 25..100 moving, 125..400 at chance (a stretch of 275 steps), one move, 450..500 at chance (50 steps)
    losses = [1.2, 0.9, 1.1, 1.0] + [chance + 0.001] * 12 + [0.8] + [chance] * 3
    metrics = write_losses(tmp_path / "metrics.jsonl", losses)
    assert script.frozen_steps(metrics, "nonsaturating") == 275
    # the least-squares loss has another chance value: the same numbers are not frozen for it
    assert script.frozen_steps(metrics, "lsgan") == 0
    # D at chance while G's loss moves is not frozen: G still hears something from D
    g_moving = [math.log(2) + 0.05 * (i % 2) for i in range(len(losses))]
    assert script.frozen_steps(write_losses(tmp_path / "g.jsonl", losses, g_moving), "nonsaturating") == 0
    assert script.frozen_steps(write_losses(tmp_path / "w.jsonl", [0.3, 0.001, -0.004, 0.5]), "wasserstein") == 25


def test_the_least_squares_band_is_as_wide_in_d_answers_as_the_logistic_one(tmp_path):
    script = bench_recipes()
    # D answering 0.5 + e to real and 0.5 - e to fake: the logistic loss (probabilities) and the least-squares
    # loss (scores) at the same e count as frozen alike, just inside the band and just outside it
    for e, frozen in [(0.004, True), (0.007, False)]:
        logistic = ([-2 * math.log(0.5 + e)] * 8, [-math.log(0.5 - e)] * 8)
        least_squares = ([(0.5 - e) ** 2] * 8, [0.5 * (0.5 + e) ** 2] * 8)
        assert (script.frozen_steps(write_losses(tmp_path / "l.jsonl", *logistic), "nonsaturating") > 0) == frozen
        assert (script.frozen_steps(write_losses(tmp_path / "s.jsonl", *least_squares), "lsgan") > 0) == frozen


def test_render_pairs_each_run_with_its_baseline_and_says_whether_the_target_is_met(tmp_path):
    script = bench_recipes()
    runs = [{"family": "dcgan", "minutes": 10.0, "seed": 0, "arm": arm, "steps": steps, "fid": fid, "kid": 0.1,
             "frozen_steps": frozen} for arm, steps, fid, frozen in
            [("baseline", 1600, 180.0, 900), ("now", 1500, 100.0, 0), ("now lr=1", 1500, 50.0, 0)]]
    runs.append({"family": "wgan", "minutes": 10.0, "seed": 0, "arm": "now", "steps": 10, "fid": 300.0, "kid": 0.3,
                 "frozen_steps": 0})
    path = tmp_path / "recipes.json"
    path.write_text(json.dumps({"runs": runs}))
    table = script.render(path)
    rows = [line for line in table.splitlines() if line.startswith("| dcgan") or line.startswith("| wgan")]
    assert len(rows) == 1, table  # a candidate (`now lr=1`) and a run without its baseline are left out
    assert "0.56 (0.6, met)" in rows[0] and "900 / 0 steps" in rows[0]


def test_the_readme_shows_the_results_file():
    script = bench_recipes()
    readme = (ROOT / "README.md").read_text()
    block = readme.split(script.BEGIN, 1)[1].split(script.END, 1)[0].strip()
    assert block == script.render(script.RESULTS), "run `python benchmarks/bench_recipes.py --render`"
