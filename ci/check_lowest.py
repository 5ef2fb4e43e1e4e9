"""Check that the lowest-versions run tests what pyproject.toml declares, before its tests run.

    .venv-lowest/bin/python ci/check_lowest.py      (make test-lowest runs it)

Every runtime dependency of coatcheck (``dependencies`` and the extras) with a lower bound
must be pinned in ci/constraints-lowest.txt to exactly that bound, and every pinned package
must be installed at its pin. Pins of packages pyproject.toml does not name (a dependency's own
dependency that coatcheck imports, such as asgiref) are allowed. Prints the versions tested;
exits 1 on any mismatch, so a bound raised in one file and not the other fails CI.
"""

from __future__ import annotations

import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "ci" / "constraints-lowest.txt"


def pins() -> dict[str, Version]:
    found: dict[str, Version] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, pinned = line.partition("==")
            found[canonicalize_name(name)] = Version(pinned)
    return found


def lower_bounds() -> dict[str, Version]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines += extra
    bounds: dict[str, Version] = {}
    for line in lines:
        req = Requirement(line)
        for spec in req.specifier:
            if spec.operator == ">=":
                bounds[canonicalize_name(req.name)] = Version(spec.version)
    return bounds


def main() -> int:
    pinned = pins()
    problems = [
        f"pyproject.toml says {name}>={bound}, ci/constraints-lowest.txt pins "
        f"{pinned.get(name, 'nothing')}"
        for name, bound in sorted(lower_bounds().items())
        if pinned.get(name) != bound
    ]
    tested = []
    for name, pin in sorted(pinned.items()):
        try:
            installed = Version(version(name))
        except PackageNotFoundError:
            problems.append(f"{name}=={pin} is pinned but not installed")
            continue
        if installed != pin:
            problems.append(f"{name} {installed} is installed, the pin is {pin}")
        tested.append(f"{name} {installed}")
    print("lowest versions: Python", sys.version.split()[0] + ",", ", ".join(tested))
    for problem in problems:
        print("ci/check_lowest.py:", problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
