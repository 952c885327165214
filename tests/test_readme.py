"""The README's two commands are the ones CI and users run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def first_code_blocks(count: int) -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [block.strip() for block in re.findall(r"```(?:sh|bash|console)?\n(.*?)```", text, re.S)[:count]]


def test_the_readme_starts_with_the_main_job_and_the_test_command() -> None:
    main, tests = first_code_blocks(2)
    assert main.endswith("paperbot run --once")
    assert "pytest" in tests


def test_ci_runs_the_readmes_test_command_verbatim() -> None:
    _, tests = first_code_blocks(2)
    assert tests in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_the_procfile_runs_the_service_in_every_documented_deployment() -> None:
    lines = (ROOT / "Procfile").read_text(encoding="utf-8").splitlines()
    assert "worker: paperbot run" in lines  # Socket Mode, or posting only
    assert "web: paperbot run" in lines  # Slack's HTTP mode: only `web` gets $PORT traffic
    assert "poller: paperbot run --role poller" in lines
    assert "deliverer: paperbot run --role worker" in lines


def test_the_slack_manifests_ask_for_the_scopes_paperbot_asks_for_at_install() -> None:
    from adapters.slack.oauth import SCOPES

    for name in ("slack-manifest.yaml", "slack-manifest-public.yaml"):
        text = (ROOT / "config" / name).read_text(encoding="utf-8")
        bot = text.split("    bot:", 1)[1].split("settings:", 1)[0]
        assert set(re.findall(r"^\s+- ([a-z:.]+)", bot, re.M)) == set(SCOPES), name
    public = (ROOT / "config" / "slack-manifest-public.yaml").read_text(encoding="utf-8")
    assert "- app_uninstalled" in public
    assert "- tokens_revoked" in public
    assert "/slack/oauth_redirect" in public


def test_both_slack_manifests_open_the_messages_tab_read_only() -> None:
    """Exports and daily digests arrive as direct messages: the app's Messages tab shows them."""
    for name in ("slack-manifest.yaml", "slack-manifest-public.yaml"):
        manifest = (ROOT / "config" / name).read_text(encoding="utf-8")
        assert "messages_tab_enabled: true" in manifest, name
        assert "messages_tab_read_only_enabled: true" in manifest, name


def test_the_discord_invite_grants_what_paperbot_uses_and_nothing_more() -> None:
    """View Channels, Send Messages, Embed Links and Read Message History (the crash-recovery lookup)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    [permissions] = [int(line.split("permissions=")[1].split("`")[0]) for line in readme.splitlines() if "permissions=" in line]
    view, send, embed, history = 1 << 10, 1 << 11, 1 << 14, 1 << 16
    assert permissions == view | send | embed | history
