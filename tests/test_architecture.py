"""The dependency rule: the core never imports a platform SDK or an adapter; adapters never need Redis.

import-linter (pyproject's [tool.importlinter], run by .ci/run) checks the whole graph; these tests
check what it cannot: what a fresh interpreter actually loads."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

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
