"""The README stays a front door: short, and every link in it leads somewhere.

Issue 17 set the length (150 lines: what Baling is, the two commands, a
first hour, the house, links); what does not fit belongs in ``docs/``.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_LINES = 150
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_readme_is_at_most_150_lines() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, (
        f"expected README.md of at most {MAX_LINES} lines, got {lines}: "
        "move the detail to its page in docs/ and link it"
    )


def test_every_relative_link_in_the_readme_names_a_file() -> None:
    targets = LINK.findall(README.read_text(encoding="utf-8"))
    local = [t.split("#", 1)[0] for t in targets if "://" not in t]
    assert local, "expected the README to link its docs pages"
    missing = [t for t in local if t and not (ROOT / t).exists()]
    assert missing == [], f"expected every linked file to exist, got {missing}"
