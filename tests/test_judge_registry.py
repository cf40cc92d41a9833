"""One judge registry: names, schemes, model specs, third-party entry points; the core never imports the bridge."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from evalsuite.errors import ConfigError, SpecError
from evalsuite.judge import ENTRY_POINT_GROUP, Judge, JudgeItem, Verdict, make_judge, register_judge, registered_judges

ROOT = Path(__file__).resolve().parents[1]
ITEM = JudgeItem("x", "who wrote frankenstein", ("Mary Shelley",), (), "Mary Shelley")


def test_built_in_names_and_schemes_resolve_through_the_registry():
    judges = registered_judges()
    for key in ("token-overlap", "learned-correctness", "bundled", "hf", "openai", "deepeval"):
        assert key in judges
    assert make_judge("token-overlap").config == {"factory": "token-overlap"}
    geval = make_judge("bundled:gemma3-270m", mode="sample", repeats=2, cache=False)
    assert geval.config["factory"] == "geval" and geval.config["model"] == "bundled:gemma3-270m"
    # options every caller may pass are ignored by a judge that has no such setting
    assert make_judge("token-overlap", mode="logprobs", repeats=10, temperature=0.7, cache=True).name.startswith(
        "token-overlap"
    )


def test_unknown_specs_and_options_fail_with_the_fix():
    with pytest.raises(SpecError, match="unknown judge 'nope'"):
        make_judge("nope")
    with pytest.raises(SpecError, match="unknown judge scheme 'zz'"):
        make_judge("zz:model")
    with pytest.raises(SpecError, match="empty judge spec"):
        make_judge(" ")
    with pytest.raises(ConfigError, match="takes no option 'form'"):
        make_judge("token-overlap", form="compact")
    with pytest.raises(ConfigError, match="unknown judge engine"):
        make_judge("bundled:gemma3-270m", engine="other")
    with pytest.raises(ConfigError, match="without ':'"):
        register_judge("a:b", lambda: None)


class _Fixed(Judge):
    def __init__(self, name, score):
        super().__init__()
        self.name, self.score = name, score

    def judge(self, items, progress=False):
        return [
            Verdict(i.id, self.name, "", self.score, self.score, 0.0, 0.0, 0, 1, (), False, "deterministic")
            for i in items
        ]


def test_register_judge_adds_a_name_and_a_scheme():
    register_judge("always-two", lambda: _Fixed("always-two", 2.0))
    register_judge("fixed", lambda spec, score=4.0: _Fixed(spec, float(score)))
    (v,) = make_judge("always-two").judge([ITEM])
    assert v.accuracy == 2.0
    judge = make_judge("fixed:anything", score=3)
    assert judge.name == "fixed:anything" and judge.judge([ITEM])[0].completeness == 3.0


def test_a_third_party_judge_arrives_through_an_entry_point(tmp_path, monkeypatch):
    package = tmp_path / "thirdparty_judges"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent("""
        from evalsuite.judge import Judge, Verdict

        class Five(Judge):
            name = "five"

            def judge(self, items, progress=False):
                return [Verdict(i.id, self.name, "", 5.0, 5.0, 0.0, 0.0, 0, 1, (), False, "deterministic") for i in
                items]

        def five():
            return Five()

        def echo(spec, **options):
            judge = Five()
            judge.name = spec
            return judge
    """)
    )
    dist = tmp_path / "thirdparty_judges-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-judges\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nfive = thirdparty_judges:five\necho = thirdparty_judges:echo\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert registered_judges()["five"] == "thirdparty_judges:five"  # listed before it is loaded
    (v,) = make_judge("five").judge([ITEM])
    assert v.judge == "five" and v.accuracy == 5.0
    assert make_judge("echo:some-model").name == "echo:some-model"
    assert callable(registered_judges()["five"])  # loaded once, then registered


def test_the_deepeval_bridge_is_an_entry_point_of_this_package():
    from importlib.metadata import entry_points

    found = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert found.get("deepeval") == "evalsuite.judge.deepeval_bridge:deepeval_judge", (
        "the installed metadata lacks the deepeval judge entry point: reinstall the package (pip install -e .)"
    )
    assert 'deepeval = "evalsuite.judge.deepeval_bridge:deepeval_judge"' in (ROOT / "pyproject.toml").read_text()


def test_the_core_does_not_import_the_deepeval_bridge():
    code = textwrap.dedent("""
        import sys
        from evalsuite.judge import make_judge, JudgeItem
        item = JudgeItem("x", "q", ("a",), (), "a")
        make_judge("token-overlap").judge([item])
        make_judge("bundled:smollm2-135m-instruct", cache=False)
        import evalsuite.judge.cli
        loaded = sorted(m for m in sys.modules if m.startswith("deepeval") or m.endswith("deepeval_bridge"))
        assert not loaded, loaded
    """)
    env_path = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "PYTHONPATH": env_path},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for path in (ROOT / "evalsuite" / "judge").glob("*.py"):
        if path.name != "deepeval_bridge.py":
            assert "deepeval_bridge" not in path.read_text(encoding="utf-8"), path
