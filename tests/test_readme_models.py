"""The README's model table is the code's: every family in it, each default as resolved, each paper value declared
by a setting that exists, and a changed default changes the table (or fails here)."""
import copy
import importlib.util
import json
from pathlib import Path

import pytest

from ganforge.api import resolve_config
from ganforge.models import MODELS
from ganforge.models.describe import BEGIN, END, defaults_text, number, resolved_defaults, setting, table, with_table

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def readme_table(text: str) -> str:
    return text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip("\n")


def render_tool():
    spec = importlib.util.spec_from_file_location("render_readme", ROOT / "tools" / "render_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_table_is_the_rendering():
    assert readme_table(README.read_text()) == table(), "run python tools/render_readme.py"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_table_reads_the_config_a_run_gets(name):
    assert resolved_defaults(name) == resolve_config(name).to_dict()


def test_every_family_is_in_the_table_once():
    names = [line.split("|")[1].strip().strip("`") for line in readme_table(README.read_text()).split("\n\n")[0].splitlines()[2:]]
    assert sorted(names) == sorted(MODELS)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_paper_settings_are_declared_exist_and_differ(name):
    cls = MODELS[name]
    assert "paper_settings" in vars(cls), f"{name} declares no paper_settings of its own"
    cfg = resolve_config(name)
    for key, paper in cls.paper_settings.items():
        default = setting(cfg, key)  # KeyError: a key that is not a setting of this family (a typo)
        assert paper != default, f"{name}: {key} is the paper's already; drop it from paper_settings"
        if isinstance(paper, str) and not isinstance(default, str):
            continue  # the paper's value in words ("200 epochs")
        kind = (int, float) if isinstance(default, float) else type(default)
        assert isinstance(paper, kind) and isinstance(paper, bool) == isinstance(default, bool), \
            f"{name}: {key} = {paper!r} is not a value of the setting's type ({type(default).__name__})"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_paper_values_are_what_set_restores(name):
    """`--set` with a family's paper values (those the settings take) resolves, and gives exactly them."""
    cls = MODELS[name]
    cfg = resolve_config(name)
    settable = {k: v for k, v in cls.paper_settings.items()
                if not isinstance(v, str) or isinstance(setting(cfg, k), str)}  # not the paper's in words
    paper = resolve_config(name, sets=[f"{k}={json.dumps(v)}" for k, v in settable.items()])
    for key, value in settable.items():
        assert setting(paper, key) == value


def test_each_row_shows_the_paper_value_beside_the_default():
    assert "batch 64 (paper 128)" in defaults_text("dcgan")
    assert "width 32 (paper 64)" in defaults_text("lsgan") and "EMA 0.999 (paper off)" in defaults_text("wgan")
    assert "width by size (paper 64)" in defaults_text("pix2pix")
    assert "steps 4000 (paper 200 epochs)" in defaults_text("cyclegan")
    assert "n_critic" not in defaults_text("cyclegan")  # a setting the family does not have


def test_a_changed_default_changes_the_table(monkeypatch):
    before = table()
    defaults = copy.deepcopy(MODELS["wgan"].defaults)
    defaults["batch_size"] = 32
    monkeypatch.setattr(MODELS["wgan"], "defaults", defaults)
    after = table()
    assert after != before and "batch 32" in defaults_text("wgan")
    assert readme_table(README.read_text()) != after  # the README test above would fail


def test_a_default_set_to_the_papers_loses_its_paper_note(monkeypatch):
    defaults = copy.deepcopy(MODELS["dcgan"].defaults)
    defaults["batch_size"] = 128
    monkeypatch.setattr(MODELS["dcgan"], "defaults", defaults)
    assert "batch 128," in defaults_text("dcgan") and "(paper 128)" not in defaults_text("dcgan")


def test_a_paper_setting_that_is_no_setting_fails(monkeypatch):
    monkeypatch.setattr(MODELS["dcgan"], "paper_settings", {"optim.G.lrr": 2e-4})
    with pytest.raises(ValueError, match="optim.G.lrr"):
        defaults_text("dcgan")


@pytest.mark.parametrize("value,text", [(2e-4, "2e-4"), (5e-5, "5e-5"), (0.0025, "2.5e-3"), (0.01, "0.01"),
                                        (10.0, "10"), (0.999, "0.999"), (True, "true"), ([256, 512], "[256, 512]")])
def test_numbers_read_as_their_yaml(value, text):
    assert number(value) == text


def test_render_tool_checks_and_rewrites(tmp_path, capsys):
    tool = render_tool()
    readme = tmp_path / "README.md"
    readme.write_text(README.read_text())
    assert tool.main(["--check", "--readme", str(readme)]) == 0
    head, rows = README.read_text().split(BEGIN)
    stale = head + BEGIN + rows.replace("batch 64 (paper 128)", "batch 64", 1)  # the dcgan row out of date
    readme.write_text(stale)
    assert tool.main(["--check", "--readme", str(readme)]) == 1
    assert "dcgan" in capsys.readouterr().err
    assert readme.read_text() == stale  # --check writes nothing
    assert tool.main(["--readme", str(readme)]) == 0
    assert readme.read_text() == README.read_text()
    readme.write_text("# no markers\n")
    assert tool.main(["--check", "--readme", str(readme)]) == 2


def test_with_table_keeps_the_rest_of_the_readme():
    text = f"before\n{BEGIN}\nold\n{END}\nafter\n"
    assert with_table(text, "new") == f"before\n{BEGIN}\nnew\n{END}\nafter\n"
