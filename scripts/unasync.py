"""Generate the synchronous tree from the asynchronous one, as httpcore does.

    python scripts/unasync.py          # rewrite the generated files
    python scripts/unasync.py --check  # fail if a generated file is stale, extra or missing

Every ``.py`` file under ``src/coatcheck/_async/`` becomes the file at the same place under
``src/coatcheck/_sync/``: ``SUBS`` turn the asyncio syntax into blocking syntax, ``NAMES`` swap each
async-only name for its synchronous counterpart (where the twins must behave differently, the
difference is a small named function or class written once per face, such as
``coatcheck.stores.redis.aio`` / ``blocking``). The result gets a docstring line saying where
it comes from and goes through ``ruff format``, so the generated tree is linted and
type-checked like the rest.

The generator is strict: it fails, naming the culprit, when a substitution applies nowhere
(the sources no longer need it: delete it), when a source keeps a ``# unasync:`` line marker or
has no module docstring, or when the output still has ``async``/``await`` or imports asyncio.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROOT = REPO / "src" / "coatcheck"
SOURCE, TARGET = ROOT / "_async", ROOT / "_sync"

# asyncio syntax and the drivers' asyncio spellings -> their blocking equivalents.
SUBS = [
    (r"\basync def\b", "def"),
    (r"\basync with\b", "with"),
    (r"\basync for\b", "for"),
    (r"\bawait ", ""),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    (r"\baclose\b", "close"),
    (r"\bredis\.asyncio\.cluster\b", "redis.cluster"),
    (r"\bredis\.asyncio\b", "redis"),
    (r"\bAsync([A-Z]\w*)", r"\1"),  # AsyncSessionManager, psycopg's AsyncCursor, AsyncIterator
]

# Names written once per face: the async one in the source, the sync one in the twin. Where
# the twins behave differently, both functions live side by side in a shared module.
NAMES = {
    "open_async_store": "open_store",
    "build_async_backend": "build_backend",
    "alogin_token": "login_token",
    "redis.aio": "redis.blocking",  # the Redis store's few async-only steps: stores/redis/
    "embedded_async_store": "embedded_store",  # memory, SQLite over threads: stores/kinds.py
    "refuse_unloaded": "load_unloaded",  # a session used before load(): web/unloaded.py
    "expect_async": "expect_sync",  # which manager a test login takes: testing/faces.py
    "run_renewing": "run_renewing_sync",  # a call in flight, its lease renewed: oidc/renewing.py
    "poll_pause": "poll_pause_sync",  # between two looks at a lease: oidc/renewing.py
}

MARKER = re.compile(r"#\s*unasync:")
SELF_REFERENCE = re.compile(
    r"\b(this\s+file\s+is|async)\s+(the\s+)?(async\s+|single\s+)?source\b", re.I
)
ASYNC_ONLY = (ast.AsyncFunctionDef, ast.AsyncWith, ast.AsyncFor, ast.Await)


class GenerateError(Exception):
    """A source or a substitution the generator refuses; the message names it."""


def compile_subs() -> list[tuple[str, re.Pattern[str], str]]:
    named = [(rf"\b{re.escape(a)}\b", b) for a, b in NAMES.items()]
    return [(pattern, re.compile(pattern), repl) for pattern, repl in SUBS + named]


def relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def unasync(text: str, src: Path, dst: Path, used: dict[str, int]) -> str:
    """The generated twin of ``text`` (read from ``src``), before formatting."""
    markers = [n for n, line in enumerate(text.splitlines(), 1) if MARKER.search(line)]
    if markers:
        where = ", ".join(f"{relative(src)}:{n}" for n in markers)
        raise GenerateError(f"'# unasync:' marker at {where}: use a named function instead")
    for pattern, regex, repl in compile_subs():
        text, count = regex.subn(repl, text)
        used[pattern] += count
    if SELF_REFERENCE.search(text):
        raise GenerateError(f"{relative(src)} calls itself the source: its twin would say so too")
    return with_origin(text, src, dst)


def with_origin(text: str, src: Path, dst: Path) -> str:
    """Append to the module docstring where the file comes from, and check the result."""
    tree = ast.parse(text, relative(dst))
    first = tree.body[0] if tree.body else None
    if not (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        raise GenerateError(f"{relative(src)} has no module docstring")
    found = [
        f"{relative(src)}:{node.lineno} ({type(node).__name__})"
        for node in ast.walk(tree)
        if isinstance(node, ASYNC_ONLY)
        or (isinstance(node, ast.Import) and any(a.name == "asyncio" for a in node.names))
        or (isinstance(node, ast.ImportFrom) and node.module == "asyncio")
    ]
    if found:
        raise GenerateError("still asynchronous after the substitutions: " + ", ".join(found))
    origin = src.relative_to(ROOT.parent).as_posix()
    note = (
        "Generated by ``scripts/unasync.py`` (``make generate``) from\n"
        f"``{origin}``: edit that file, not this one."
    )
    lines = text.splitlines(keepends=True)
    end = first.end_lineno
    assert end is not None
    assert first.end_col_offset is not None
    close = first.end_col_offset - 3  # the closing quotes of the docstring
    line = lines[end - 1].encode()  # ast counts columns in UTF-8 bytes
    body = line[:close].decode().rstrip()
    lines[end - 1] = (f"{body}\n\n" if body else "\n") + f"{note}\n" + line[close:].decode()
    return "".join(lines)


def formatted(texts: dict[Path, str]) -> dict[Path, str]:
    """``ruff format`` with the project's settings (the async lines are longer), in one run."""
    with tempfile.TemporaryDirectory() as tmp:
        staged = {dst: Path(tmp, relative(dst)) for dst in texts}
        for dst, path in staged.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(texts[dst])
        config = REPO / "pyproject.toml"
        done = subprocess.run(
            [sys.executable, "-m", "ruff", "format", "--quiet", "--config", str(config), tmp],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise GenerateError(f"ruff format failed:\n{done.stdout}{done.stderr}")
        return {dst: path.read_text() for dst, path in staged.items()}


def generate() -> dict[Path, str]:
    """Every generated file and its text; GenerateError on anything the rules refuse."""
    used = {pattern: 0 for pattern, _, _ in compile_subs()}
    wanted: dict[Path, str] = {}
    for src in sorted(SOURCE.rglob("*.py")):
        dst = TARGET / src.relative_to(SOURCE)
        wanted[dst] = unasync(src.read_text(), src, dst, used)
    unused = [pattern for pattern, count in used.items() if count == 0]
    if unused:
        raise GenerateError(
            "substitutions that apply nowhere (delete them from scripts/unasync.py): "
            + ", ".join(repr(p) for p in unused)
        )
    return formatted(wanted)


def main() -> int:
    check = "--check" in sys.argv[1:]
    try:
        wanted = generate()
    except GenerateError as exc:
        print(f"scripts/unasync.py: {exc}", file=sys.stderr)
        return 1
    present = set(TARGET.rglob("*.py"))
    stale = sorted(p for p, text in wanted.items() if not p.exists() or p.read_text() != text)
    extra = sorted(present - wanted.keys())
    if check:
        for path in stale:
            print(f"stale: {relative(path)}", file=sys.stderr)
        for path in extra:
            print(f"no source: {relative(path)}", file=sys.stderr)
        if stale or extra:
            print("run: make generate", file=sys.stderr)
            return 1
        return 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(wanted[path])
    for path in extra:
        path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
