"""The dependency rule: the core never imports a platform SDK or an adapter; adapters never need Redis.

import-linter (pyproject's [tool.importlinter], run by .ci/run) checks the whole graph; these tests
check what it cannot: what a fresh interpreter actually loads."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("slack_bolt", "slack_sdk", "discord", "adapters")


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_core_never_imports_platforms_or_adapters() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imports(path) & set(FORBIDDEN))
        for path in (ROOT / "bot").rglob("*.py")
        if path != ROOT / "bot" / "app.py"  # the composition root is the one place that knows the adapters
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_importing_the_core_loads_no_platform_sdk() -> None:
    code = f"import sys, bot.app, bot.cli; print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"


def test_every_module_has_a_docstring() -> None:
    missing = [
        str(path.relative_to(ROOT))
        for folder in ("bot", "adapters")
        for path in (ROOT / folder).rglob("*.py")
        if ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) is None
    ]
    assert missing == []


def loaded(modules: str, which: str) -> str:
    """The modules a fresh interpreter holds, among those ``which`` (an expression on ``m``) picks,
    after importing ``modules``."""
    code = f"import sys, {modules}; print(sorted(m for m in sys.modules if {which}))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout.strip()


def test_the_renderers_load_neither_redis_nor_the_store() -> None:
    renderers = "adapters.slack.render, adapters.discord.render, adapters.console"
    assert loaded(renderers, "m.split('.')[0] == 'redis' or m.startswith('bot.store')") == "[]"


def test_a_run_loads_bs4_apscheduler_and_numpy_only_when_it_needs_them() -> None:
    # bs4 parses the Daily Papers page only when the API fails; apscheduler runs only in the service;
    # numpy only once someone searches.
    assert loaded("bot.app, bot.cli", "m.split('.')[0] in ('bs4', 'apscheduler', 'numpy')") == "[]"


def test_the_house_stays_small_rooms() -> None:
    """At most 14 modules directly in bot/ (the ground floor and the composition root); no module in bot/
    or adapters/ over 600 lines; each folder's __init__ is a docstring, nothing to import from it."""
    assert len(list((ROOT / "bot").glob("*.py"))) <= 14
    long = {
        str(p.relative_to(ROOT)): n
        for f in ("bot", "adapters")
        for p in (ROOT / f).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 600
    }
    assert long == {}
    for init in (ROOT / "bot").glob("*/__init__.py"):
        body = ast.parse(init.read_text()).body
        assert len(body) == 1 and ast.get_docstring(ast.parse(init.read_text())), init  # noqa: PT018


def lint_imports_with(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess[str]:
    """import-linter over a copy of the tree in which ``module`` (a path under the root) has ``line`` added."""
    for folder in ("bot", "adapters"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    command = [
        sys.executable,
        "-c",
        "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())",
    ]
    return subprocess.run([*command, "--no-cache"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)


def test_the_contracts_hold_on_the_tree_as_it_is(tmp_path: Path) -> None:
    result = lint_imports_with(tmp_path, "bot/chat/commands.py", "# nothing added")
    assert result.returncode == 0, result.stdout
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("line", "broken"),
    [
        ("import bot.store", "Use cases reach the store only through bot.ports"),
        ("from bot.store.redis import RedisStore", "Use cases reach the store only through bot.ports"),
        ("import redis", "Use cases reach the store only through bot.ports"),
        ("from bot.flow import poller", "The core is layered"),
        ("from bot.app import open_app", "The core is layered"),
    ],
)
def test_an_import_across_the_rules_breaks_the_contracts(tmp_path: Path, line: str, broken: str) -> None:
    """The module that defines CommandCore: a store import, or one from a sibling or a higher floor, is caught."""
    result = lint_imports_with(tmp_path, "bot/chat/commands.py", line)
    assert result.returncode == 1, result.stdout
    assert f"{broken}" in " ".join(result.stdout.split())
    assert "BROKEN" in result.stdout
