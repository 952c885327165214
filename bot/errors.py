"""The error tree. Expected failures are one of these; anything else is a bug.

    PaperbotError
    ├── ConfigError      bad or missing settings; reported once, before anything connects
    ├── SourceError      a paper source failed (HTTP error, garbage, changed page layout)
    │   └── SourceUnreachableError   no answer at all (DNS, connection, timeout) after retries
    ├── StoreError       the Redis store is unreachable or refused a command
    ├── DeliveryError    an adapter could not post; ``permanent``: the destination needs a person;
    │                    ``rejected``: this one message will never be accepted (the rest can go on)
    ├── ListenerError    a chat platform's connection could not be made (a wrong token, no network)
    └── CommandError     a user's command is malformed; shown to that user only

Sources, stores and adapters translate third-party exceptions into these at the boundary,
so the core never catches an httpx, redis or SDK exception type.
"""

from __future__ import annotations


class PaperbotError(Exception):
    """Base class of every expected failure."""


class ConfigError(PaperbotError):
    """The configuration is invalid; ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in self.problems))


class SourceError(PaperbotError):
    """A source could not produce papers (network, HTTP status, unparseable payload)."""


class SourceUnreachableError(SourceError):
    """The source's host gave no answer at all; trying other pages of the same host is pointless."""


class StoreError(PaperbotError):
    """The store failed: Redis unreachable, refused, or returned something unexpected."""


class SealError(StoreError):
    """A sealed value (a workspace's tokens) cannot be opened with the configured secret."""


class DeliveryError(PaperbotError):
    """An adapter could not post. ``permanent``: the destination refuses everything until a person acts
    (not in the channel, bad auth), so it is paused. ``rejected``: the platform refused this message
    itself (invalid blocks, too long), deterministically: it becomes a dead letter and the channel goes on.
    ``gone``: the message to edit no longer exists (someone deleted it): the edit is dropped.
    ``vanished``: the destination itself no longer exists (a deleted channel): it is forgotten."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        rejected: bool = False,
        retry_after: float | None = None,
        gone: bool = False,
        vanished: bool = False,
    ):
        super().__init__(message)
        self.vanished = vanished
        self.permanent = permanent
        self.rejected = rejected
        self.retry_after = retry_after
        self.gone = gone


class CommandError(PaperbotError):
    """A user's command could not be understood; the message says what is wrong and where."""


class ListenerError(PaperbotError):
    """A chat platform's connection could not be made, for a reason worth one line (no traceback)."""
