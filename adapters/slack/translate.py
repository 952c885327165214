"""Slack payloads → core values. Pure functions over the dicts Slack sends."""

from __future__ import annotations

from typing import Any

from bot.model import Destination, PostRef, Reaction, UserRef


def command_parts(body: dict[str, Any]) -> tuple[str, UserRef, Destination]:
    """A slash command's text, who sent it and where (``user_id`` only: ``user_name`` is deprecated)."""
    return str(body.get("text") or ""), UserRef("slack", str(body["user_id"])), Destination("slack", str(body["channel_id"]))


def reaction_from(event: dict[str, Any], added: bool) -> Reaction | None:
    """A ``reaction_added``/``reaction_removed`` event on a message; None for anything else."""
    item = event.get("item") or {}
    if item.get("type") != "message" or not item.get("channel") or not item.get("ts") or not event.get("user"):
        return None
    post = PostRef(Destination("slack", str(item["channel"])), str(item["ts"]))  # ts stays a string: it is an id
    return Reaction(post, UserRef("slack", str(event["user"])), str(event.get("reaction", "")), added)


def action_parts(body: dict[str, Any]) -> tuple[UserRef, str]:
    """Who pressed a button, and the paper id it carries."""
    return UserRef("slack", str(body["user"]["id"])), str(body["actions"][0].get("value", ""))
