"""`ganforge runs`: the table of the runs under a folder, read from real short runs' files (a digit run and a
translation run, one nested a level deeper), sorted each way, with damaged run folders shown as far as they can be."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import ganforge
from ganforge.cli import main
from ganforge.commands.runs import find_runs, main_figure, read_run
from ganforge.errors import UserError

QUIET = ["threads=1", "sample.every=0", "eval.n=50", "eval.share=1", "log.tensorboard=false"]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """runs/digits/dcgan (20 steps, cFD at 10 and 20) and runs/cyclegan (4 steps, the translation figures)."""
    root = tmp_path_factory.mktemp("runs")
    ganforge.train("dcgan", out=str(root / "digits" / "dcgan"), steps=20, batch_size=16, progress=False,
                   set=[*QUIET, "width=8", "log.every=5", "eval.every=10", "checkpoint.every=10"])
    ganforge.train("cyclegan", data="mnist5k-colored", out=str(root / "cyclegan"), steps=4, batch_size=4, progress=False,
                   set=[*QUIET, "width=4", "n_blocks=1", "log.every=2", "eval.every=2"])
    return root


def records(run: Path, kind: str):
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["kind"] == kind]


def test_each_row_says_what_the_runs_files_hold(root):
    rows = {Path(r["folder"]).name: r for r in find_runs(root)}
    assert sorted(rows) == ["cyclegan", "dcgan"]  # runs/digits/dcgan found a level down
    dcgan, cyclegan = rows["dcgan"], rows["cyclegan"]
    evals = records(root / "digits" / "dcgan", "eval")
    best = min(evals, key=lambda r: r["cfd"])
    sidecar = json.loads((root / "digits" / "dcgan" / "checkpoints" / "step_000020.json").read_text())
    assert (dcgan["model"], dcgan["data"], dcgan["steps"], dcgan["figure"], dcgan["lower_is_better"]) == (
        "dcgan", "mnist5k", 20, "cfd", True)
    assert (dcgan["best"], dcgan["best_step"]) == (best["cfd"], best["step"])
    assert (dcgan["last"], dcgan["last_step"]) == (evals[-1]["cfd"], 20)
    assert dcgan["minutes"] == pytest.approx(sidecar["elapsed"] / 60)
    assert dcgan["notes"] == []
    # a translation family's figure is its named set's: cyclegan's digits translated from A to B
    assert (cyclegan["model"], cyclegan["data"], cyclegan["steps"], cyclegan["figure"]) == (
        "cyclegan", "mnist5k-colored", 4, "a2b_cfd")
    assert cyclegan["last"] == records(root / "cyclegan", "eval")[-1]["a2b_cfd"]


def test_the_command_prints_one_row_per_run_in_the_order_asked(root, capsys):
    assert main(["runs", str(root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["model", "data", "steps", "figure"]
    assert [line.split()[0] for line in lines[1:]] == ["cyclegan", "dcgan"]  # by folder: cyclegan < digits/dcgan
    assert "a2b_cfd" in lines[1] and str(root / "cyclegan") in lines[1]
    assert main(["runs", str(root), "--sort", "steps"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]] == ["dcgan", "cyclegan"]


def test_sorting_by_time_and_by_figure(root):
    by_time = find_runs(root, sort="time")
    assert by_time[0]["minutes"] >= by_time[1]["minutes"]
    assert [r["figure"] for r in find_runs(root, sort="figure")] == ["a2b_cfd", "cfd"]  # figures grouped by name


def test_no_runs_is_one_line(tmp_path, capsys):
    (tmp_path / "empty" / "deeper").mkdir(parents=True)
    assert main(["runs", str(tmp_path / "empty")]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("no runs under")


def test_a_missing_folder_is_one_error_line(tmp_path, capsys):
    assert main(["runs", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nowhere" in err and "Traceback" not in err


def test_a_damaged_run_shows_what_it_can_and_names_what_is_missing(root, tmp_path, capsys):
    damaged = tmp_path / "runs" / "damaged"
    shutil.copytree(root / "digits" / "dcgan", damaged)
    (damaged / "config.yaml").unlink()
    with open(damaged / "metrics.jsonl", "a") as f:
        f.write('{"kind": "train", "step": 2\n')  # a line cut short by a crash
    row = read_run(damaged)
    # model and data come from the newest checkpoint's sidecar; the figures from the good lines
    assert (row["model"], row["data"], row["steps"], row["figure"]) == ("dcgan", "mnist5k", 20, "cfd")
    assert row["notes"] == ["metrics.jsonl: 1 unreadable line skipped", "no config.yaml"]

    wrecked = tmp_path / "runs" / "wrecked"
    (wrecked / "checkpoints").mkdir(parents=True)
    (wrecked / "metrics.jsonl").write_bytes(b"\xff\xfe garbage\n[1, 2]\n")
    (wrecked / "checkpoints" / "step_000007.json").write_text("{ not json")
    assert main(["runs", str(tmp_path / "runs")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[2].split()[:3] == ["?", "?", "7"]  # steps from the checkpoint's name
    for note in ("2 unreadable lines skipped", "no config.yaml", "checkpoints/step_000007.json unreadable", "model unknown"):
        assert note in lines[2]


@pytest.mark.parametrize("figures, chosen", [
    ({"fid": 80.0, "kid": 0.05, "kid_std": 0.01}, ("fid", True)),  # colour data
    ({"cfd": 20.0, "score": 8.0, "acc": 0.9}, ("cfd", True)),  # digits
    ({"psnr_cycle_x": 20.0, "psnr_a2b": 15.0, "a2b_cfd": 40.0, "a2b_fid": 90.0, "a2b_fid_input": 200.0}, ("a2b_fid", True)),
    ({"psnr_cycle_x": 20.0, "psnr_cycle_y": 21.0, "psnr_a2b": 15.0}, ("psnr_a2b", False)),  # colour, no Inception
    ({"psnr": 22.0, "cfd": 30.0, "psnr_bicubic": 20.0, "bicubic_cfd": 25.0}, ("cfd", True)),  # srgan: not the baseline
    ({"attr_acc": 0.8, "attr_all": 0.6, "digit_acc": 0.9}, ("attr_acc", False)),  # stargan
    ({"psnr_hole": 18.0, "l1": 0.2}, ("psnr_hole", False)),  # inpaint on colour data
    ({"n": 50, "seconds": 1.0}, None),
])
def test_the_main_figure_of_each_family(figures, chosen):
    assert main_figure([{"kind": "eval", "step": 10, **figures}]) == chosen


def test_the_best_figure_follows_its_direction(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    lines = [{"kind": "eval", "step": s, "psnr": p} for s, p in ((10, 12.0), (20, 18.5), (30, 16.0))]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    row = read_run(run)
    assert (row["figure"], row["best"], row["best_step"], row["last"], row["last_step"]) == ("psnr", 18.5, 20, 16.0, 30)


def test_a_file_is_not_a_runs_folder(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        find_runs(tmp_path / "file.txt")


def test_the_table_reads_files_only_without_importing_torch(root):
    script = ("import sys\nfrom ganforge.cli import main\ncode = main(['runs', sys.argv[1]])\n"
              "print('TORCH' if 'torch' in sys.modules else 'NO TORCH', code)")
    done = subprocess.run([sys.executable, "-c", script, str(root)], capture_output=True, text=True, timeout=60)
    assert done.stdout.splitlines()[-1] == "NO TORCH 0", done.stderr
