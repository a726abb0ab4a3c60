"""docs/papers.md covers every table and figure of the four papers with configs that exist."""

import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parents[1]
DOC = (REPO / "docs" / "papers.md").read_text()

# Every table and figure of the four papers (`shared/papers/`).
ITEMS = {
    "BAN": ["Figure 1", "Table 1", "Table 2 (left)", "Table 2 (right)", "Table 3 (left)",
            "Table 3 (right)", "Table 4", "Table 5", "Table 6"],
    "TT": ["Table 1", "Figure 1", "Table 2", "Table 3", "Figure 2", "Table 4", "Table 5",
           "Table 6"],
    "SD": ["Table 1", "Table 2", "Table 3", "Table 4", "Figure 1", "Table 5"],
    "RCO": ["Figure 1", "Figure 2", "Table 1", "Figure 3", "Table 2", "Table 3", "Figure 4",
            "Table 4", "Table 5", "Table 6", "Table 7", "Figure 5", "Figure 6"],
}


def _rows() -> dict[str, str]:
    rows = {}
    for line in DOC.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0].split(" ")[0] in ITEMS:
            rows[cells[0]] = line
    return rows


def test_every_table_and_figure_has_one_row():
    rows = _rows()
    expected = {f"{paper} {item}" for paper, items in ITEMS.items() for item in items}
    assert set(rows) == expected
    for name, line in rows.items():
        what, how = [c.strip() for c in line.strip().strip("|").split("|")][1:3]
        assert what and how, name


def test_every_config_named_exists():
    named = set(re.findall(r"configs/([\w.]+\.py)", DOC))
    assert len(named) >= 20
    missing = sorted(n for n in named if not (REPO / "configs" / n).is_file())
    assert not missing, f"docs/papers.md names configs that do not exist: {missing}"


def test_every_paper_config_is_named():
    configs = {p.name for p in (REPO / "configs").glob("*.py")} - {"quickstart.py"}
    assert configs <= set(re.findall(r"configs/([\w.]+\.py)", DOC))
