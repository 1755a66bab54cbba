"""`ganforge bench` finds the benchmarks of the source checkout it was installed from, from any folder."""
from ganforge.cli import main


def test_bench_finds_the_checkouts_benchmarks_from_another_folder(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)  # no benchmarks/ here
    assert main(["bench", "no-such-benchmark"]) == 2
    err = capfd.readouterr().err
    assert "unknown benchmark(s) bench_no-such-benchmark.py" in err and "train" in err
