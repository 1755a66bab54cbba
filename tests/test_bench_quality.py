"""benchmarks/bench_quality.py: the ladder's mechanism in a few steps, in its own scratch folder only."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from support_scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_quality.py"


def bench_quality():
    return load_script("bench_quality")


def fingerprint(*paths: Path) -> dict:
    """Each file's content hash under the paths (a missing path reads as absent)."""
    files = [p for path in paths for p in ([path] if path.is_file() else sorted(path.rglob("*")) if path.is_dir() else [])]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files if p.is_file()}


def test_quick_ladder_writes_its_figures_table_and_plot_to_the_scratch_folder_only(tmp_path):
    guarded = (ROOT / "README.md", ROOT / "benchmarks" / "results", ROOT / "docs")
    before = fingerprint(*guarded)
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--families", "dcgan", "cgan", "--minutes", "2", "5",
                           "--seeds", "0", "--parallel", "2", "--set", "width=8", "--scratch", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "CPU time" in done.stdout  # the estimate comes before the runs

    scratch = tmp_path / "quick"
    runs = json.loads((scratch / "bench_quality.json").read_text())["runs"]
    got = {(r["family"], r["data"], r["minutes"]): r for r in runs}
    # cgan needs labels, which openmoji has not: it runs on the digits alone
    assert set(got) == {(f, d, m) for f, d in (("dcgan", "mnist5k"), ("cgan", "mnist5k"), ("dcgan", "openmoji"))
                        for m in (2.0, 5.0)}
    for (family, data, minutes), run in got.items():
        figures = ("cfd",) if data == "mnist5k" else ("fid", "kid")
        assert all(isinstance(run["metrics"].get(k), float) for k in figures), run
        assert run["metrics"]["n"] == 8 and run["eval_seconds"] is not None
        # the second rung continues the first rung's run
        assert run["steps"] == (3 if minutes == 2.0 else 6)
        assert run["resumed_from"] == (None if minutes == 2.0 else 2.0)
        assert got[(family, data, 2.0)]["training_minutes"] <= got[(family, data, 5.0)]["training_minutes"]

    table = (scratch / "bench_quality.md").read_text()
    assert "**mnist5k**" in table and "**openmoji**" in table and "| cgan | cFD |" in table
    assert (scratch / "quality_per_minute.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert fingerprint(*guarded) == before, "a --quick run wrote outside its scratch folder"


def test_readme_block_is_rendered_from_the_results():
    script = bench_quality()
    block = script.readme_block(script.README.read_text())
    assert block == script.render_table(script.load_results()), "run `python benchmarks/bench_quality.py --render`"
