"""Without its extra, an adapter (or a store) says in one line which ``pip install`` brings it.

Each case runs in a fresh interpreter whose import system refuses the framework's modules, as
an environment without the extra would (a finder on ``sys.meta_path``, not a mock of coatcheck).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

BLOCKER = """
import sys

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
{code}
"""


def run_without(blocked: set[str], code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER.format(blocked=blocked, code=code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("module", "blocked", "expected"),
    [
        (
            "coatcheck.django",
            {"django", "asgiref"},
            "ModuleNotFoundError: coatcheck.django needs Django: "
            "pip install 'coatcheck[django]' (No module named 'django')",
        ),
        (
            "coatcheck.django.middleware",
            {"django", "asgiref"},
            "ModuleNotFoundError: coatcheck.django needs Django: "
            "pip install 'coatcheck[django]' (No module named 'django')",
        ),
        (
            "coatcheck.web.flask",
            {"flask"},
            "ModuleNotFoundError: coatcheck.web.flask needs Flask: "
            "pip install 'coatcheck[flask]' (No module named 'flask')",
        ),
        (
            "coatcheck.web.starlette",
            {"starlette", "fastapi"},
            "ModuleNotFoundError: coatcheck.web.starlette needs Starlette: "
            "pip install 'coatcheck[starlette]' (No module named 'starlette')",
        ),
    ],
)
def test_adapter_without_its_extra_names_the_extra(
    module: str, blocked: set[str], expected: str
) -> None:
    result = run_without(blocked, f"import {module}")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == expected


@pytest.mark.parametrize("name", ["Session", "AuthenticatedSession"])
def test_fastapi_dependencies_without_fastapi_name_the_extra(name: str) -> None:
    """Plain Starlette works without FastAPI; only its dependencies need the extra."""
    result = run_without({"fastapi"}, f"from coatcheck.web.starlette import {name}")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        f"ModuleNotFoundError: coatcheck.web.starlette.{name} needs FastAPI: "
        "pip install 'coatcheck[fastapi]' (No module named 'fastapi')"
    )
    plain = run_without({"fastapi"}, "from coatcheck.web.starlette import get_session")
    assert plain.returncode == 0, plain.stderr


def test_the_error_keeps_its_class_and_module_name() -> None:
    result = run_without(
        {"flask"},
        "try:\n"
        "    import coatcheck.web.flask\n"
        "except ModuleNotFoundError as exc:\n"
        "    print(exc.name)",
    )
    assert (result.returncode, result.stdout) == (0, "flask\n"), result.stderr


def test_store_without_its_driver_says_the_same() -> None:
    code = (
        "from coatcheck import ConfigError, open_store\n"
        "try:\n"
        "    open_store('postgresql://db/x')\n"
        "except ConfigError as exc:\n"
        "    print(exc)"
    )
    result = run_without({"psycopg", "psycopg_pool"}, code)
    assert result.stdout == (
        "the postgres store needs its driver: pip install 'coatcheck[postgres]' "
        "(No module named 'psycopg')\n"
    ), result.stderr


def test_cli_without_a_driver_exits_2_with_one_line() -> None:
    code = (
        "import sys\nfrom coatcheck.cli import main\n"
        "sys.exit(main(['--store', 'redis://x', 'stats']))"
    )
    result = run_without({"redis", "hiredis"}, code)
    assert result.returncode == 2
    assert result.stderr == (
        "coatcheck: error: the redis store needs its driver: pip install 'coatcheck[redis]' "
        "(No module named 'redis')\n"
    )
