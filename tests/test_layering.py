"""Arrows only point down: core <- config <- stores <- managers <- web/adapters <- cli.

Read from the source with ``ast`` (every ``import``, also those inside functions and under
``TYPE_CHECKING``: a type-only arrow is still an arrow), and checked once for real in a fresh
interpreter: importing every module below the web layer loads none of the web layer.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "coatcheck"

# Lowest first. A module belongs to the layer of its longest matching prefix; a module that
# matches none fails the test, so a new package has to say where it stands.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("coatcheck.core",)),
    ("config", ("coatcheck.config", "coatcheck._extras")),
    ("stores", ("coatcheck.stores", "coatcheck._async.stores", "coatcheck._sync.stores")),
    (
        "managers",
        (
            "coatcheck._async",
            "coatcheck._sync",
            "coatcheck.sealed",
            "coatcheck._async.sealed",
            "coatcheck._sync.sealed",
            "coatcheck.cookies",
        ),
    ),
    (
        "web",
        (
            "coatcheck.web",
            "coatcheck._async.web",
            "coatcheck._sync.web",
            "coatcheck.django",
            "coatcheck.testing",
            "coatcheck._async.testing",
            "coatcheck._sync.testing",
            "coatcheck.apitokens",
            "coatcheck.service",
            "coatcheck.client",
            "coatcheck._async.client",
            "coatcheck._sync.client",
            "coatcheck.oidc",
            "coatcheck._async.oidc",
            "coatcheck._sync.oidc",
        ),
    ),
    ("cli", ("coatcheck.cli", "coatcheck.__main__", "coatcheck")),
]
RANK = {name: rank for rank, (name, _) in enumerate(LAYERS)}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str | None:
    best: tuple[int, str] | None = None
    for layer, prefixes in LAYERS:
        for prefix in prefixes:
            nested = prefix != "coatcheck" and module.startswith(prefix + ".")  # root: itself
            if (module == prefix or nested) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), layer)
    return best[1] if best else None


MODULES = {module_name(p) for p in PACKAGE.rglob("*.py")}


def imports_of(path: Path) -> set[str]:
    """The coatcheck modules ``path`` imports, absolute; ``from x import name`` counts as
    ``x.name`` when that is a module, else as x (a package whose modules alone are imported
    is loaded as their parent, like every package above any module)."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = {f"{target}.{alias.name}" for alias in node.names}
            found.update(names & MODULES)
            if not names <= MODULES:
                found.add(target)
    return found & MODULES


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    unplaced = [module_name(p) for p in SOURCES if layer_of(module_name(p)) is None]
    assert unplaced == [], "add these to LAYERS in tests/test_layering.py"


def test_arrows_only_point_down() -> None:
    upward = []
    for path in SOURCES:
        here = module_name(path)
        layer = layer_of(here)
        assert layer is not None
        for target in sorted(imports_of(path)):
            there = layer_of(target)
            if there is not None and RANK[there] > RANK[layer]:
                upward.append(f"{here} ({layer}) imports {target} ({there})")
    assert upward == []


@pytest.mark.parametrize("layer", ["core", "config"])
def test_the_bottom_layers_import_only_what_is_below_them(layer: str) -> None:
    """core imports only core; config only core (and the extras' wording)."""
    found = {
        f"{module_name(p)} imports {target}"
        for p in SOURCES
        if layer_of(module_name(p)) == layer
        for target in imports_of(p)
        if RANK[layer_of(target) or "cli"] >= RANK[layer] and layer_of(target) != layer
    }
    assert found == set()


def test_nothing_below_the_web_layer_loads_it() -> None:
    """The symptom the rule prevents: a store (or the config) pulling in the web layer."""
    below = [
        module_name(p)
        for p in SOURCES
        if RANK[layer_of(module_name(p)) or "cli"] < RANK["web"] and module_name(p) != "coatcheck"
    ]
    code = (
        "import importlib, sys\n"
        f"for name in {below!r}:\n"
        "    importlib.import_module(name)\n"
        "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('coatcheck'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    loaded = result.stdout.split()
    above = [m for m in loaded if RANK[layer_of(m) or "cli"] >= RANK["web"] and m != "coatcheck"]
    assert above == []
