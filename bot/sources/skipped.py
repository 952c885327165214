"""What a source skipped in one fetch: counted, the first reasons kept, logged as one line."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field


@dataclass
class Skipped:
    """The malformed items a source skipped in one fetch: all counted, the first few reasons kept, and
    logged as one line however many there were (a broken feed must not flood the log)."""

    count: int = 0
    first: list[str] = field(default_factory=list)

    def add(self, reason: str) -> None:
        """Count one skipped item."""
        self.count += 1
        if len(self.first) < 3:
            self.first.append(reason[:120])

    def log(self, logger: logging.Logger, where: str) -> None:
        """One warning line, if anything was skipped."""
        if self.count:
            kv = {"where": where, "skipped": self.count, "first": " | ".join(self.first)}
            logger.warning("skipped malformed papers", extra={"kv": kv})
