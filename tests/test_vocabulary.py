"""One source per vocabulary: no stage or segment name is spelled out in Python, in a
contract or in a declaration's tests; all come from the seeds (sql/seeds/)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from pipeline import seeds
from pipeline.report import palette

ROOT = Path(__file__).resolve().parents[1]
# The simulator's hidden states are its own vocabulary (the ground truth the demo's
# alerts are judged against), not the product's stages.
EXEMPT = {ROOT / "pipeline" / "demo" / "simulate.py"}


def _sources() -> list[Path]:
    python = [*ROOT.glob("pipeline/**/*.py"), *ROOT.glob("dags/**/*.py")]
    declarations = list(ROOT.glob("sql/**/*.toml"))
    return [path for path in python + declarations if path not in EXEMPT]


def _text(path: Path) -> str:
    """A source's text; for a declaration, without its unit tests' rows (test data, as
    in tests/, may name stages), as Python's repr of what is left."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".toml":
        return text
    declared = tomllib.loads(text)
    declared.pop("unit_tests", None)
    return "\n".join(f"{key} = {value!r}" for key, value in declared.items())


def _names() -> list[str]:
    return [*seeds.stage_names(), *seeds.segment_names()]


def test_the_sources_exist() -> None:
    sources = _sources()
    assert len([p for p in sources if p.suffix == ".toml"]) >= 20
    assert len([p for p in sources if p.suffix == ".py"]) >= 80


@pytest.mark.parametrize("name", _names())
def test_no_stage_or_segment_is_spelled_out(name: str) -> None:
    quoted = re.compile(rf"""(["']){re.escape(name)}\1""")
    spelled = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in _sources()
        for number, line in enumerate(_text(path).splitlines(), 1)
        if quoted.search(line)
    ]
    assert not spelled, f"{name!r} spelled out instead of read from sql/seeds: {spelled}"


def test_the_grep_would_find_a_spelled_out_stage(tmp_path: Path) -> None:
    """The pattern above catches both quote styles (so the test can fail)."""
    quoted = re.compile(r"""(["'])danger\1""")
    assert quoted.search('stage == "danger"') and quoted.search("stage = 'danger'")
    assert not quoted.search("in danger of")


def test_the_seeds_hold_the_documented_vocabularies() -> None:
    assert len(seeds.stage_names()) == 7
    assert seeds.stage_names()[0] == next(s.name for s in seeds.stages() if not s.buyer)
    assert len(seeds.segment_names()) == 11
    # Every segment of the 125-cell grid has a value order and colour, and no other.
    assert set(seeds.values("rfm_segments", "segment")) == set(seeds.segment_names())
    assert len(seeds.rows("rfm_types")) == 8
    assert set(seeds.danger_rules()) == {"risk", "second_purchase_overdue", "returns"}
    # Every rule's action family has a catch-all action in danger_actions.
    families = set(seeds.values("danger_rules", "action_rule"))
    catch_all = {row["rule"] for row in seeds.rows("danger_actions") if row["from_stage"] == "*"}
    assert families <= catch_all


def test_the_palette_and_the_backtest_read_the_seeds() -> None:
    from pipeline.lifecycle import backtest

    assert seeds.stage_names() == palette.STAGES
    assert seeds.segment_names() == palette.SEGMENTS
    assert backtest.STAGE_ORDER[0] == "maturity"
    assert set(backtest.ACTIVE_STAGES) == {"socialization", "growth", "maturity"}
    assert len(set(palette.STAGE_COLOURS.values())) == 7
