"""The examples' instructions name one address: the one the top-level README and the Makefile
use."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from example_sites import EXAMPLES

ROOT = EXAMPLES.parent
# Where a browser goes, or the port a server is started on (not PostgreSQL's or Redis's).
WEB = re.compile(r"(?:http://(?:127\.0\.0\.1|localhost):|runserver 127\.0\.0\.1:|--port[ =])(\d+)")


def ports(path: Path) -> set[str]:
    return set(WEB.findall(path.read_text()))


@pytest.mark.parametrize(
    "path",
    [
        *sorted(EXAMPLES.glob("*/README.md")),
        *sorted(EXAMPLES.glob("*/app.py")),
    ],
    ids=lambda p: str(p.relative_to(EXAMPLES)),
)
def test_every_example_names_the_port_of_the_readme_and_makefile(path: Path) -> None:
    assert ports(ROOT / "README.md") == {"8000"}
    assert ports(ROOT / "Makefile") == {"8000"}
    assert ports(path) <= {"8000"}, path
