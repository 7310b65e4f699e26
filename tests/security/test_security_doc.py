"""docs/security.md and the README show the permission matrix the code enforces.

The table between the ``matrix`` markers must equal
:func:`central.operators.access.render_matrix`, generated from ``GRANTS``, so the
document and the code cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from central.operators.access import GRANTS, render_matrix

ROOT = Path(__file__).parents[2]
DOCS = (ROOT / "docs" / "security.md", ROOT / "README.md")
BEGIN, END = "<!-- matrix:begin -->\n", "<!-- matrix:end -->"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_the_documented_matrix_is_the_enforced_one(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    assert BEGIN in text
    assert END in text
    shown = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert shown == render_matrix(), (
        f"{doc.name} is out of date; paste the output of "
        "central.operators.access.render_matrix() between the matrix markers"
    )


def test_every_grant_is_a_row() -> None:
    assert render_matrix().count("\n") == len(GRANTS) + 2
