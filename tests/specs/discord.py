"""Discord REST calls checked against Discord's published OpenAPI 3.1 spec (discord/discord-api-spec).

Every request the Discord stand-in receives goes through ``problems``: the route and the verb must be
in the spec, query parameters known and valid, the content type one the operation takes, and the body
valid against the operation's request schema (JSON Schema 2020-12, ``$ref`` resolved in the spec).
Discord ignores fields a schema does not name; the check refuses them (a misspelt field does nothing
on Discord, silently), which makes it stricter than Discord, never looser.
"""

from __future__ import annotations

import gzip
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

HERE = Path(__file__).parent
URN = "urn:discord-openapi"

# Where Discord takes more than its spec says, and the unmodified discord.py relies on it (each with why):
# - snowflakes in requests as integers too (the spec types them as strings; discord.py sends ints, as it
#   always has, and Discord takes them: "Snowflakes" in Discord's API reference);
# - boolean query strings as true/True/1 or false/False/0 ("Boolean Query Strings" in the API reference);
# - fields Discord ignores that discord.py sends anyway (``tts`` with every message edit).
BOOLEANS = {"true": True, "True": True, "1": True, "false": False, "False": False, "0": False}
IGNORED_FIELDS = {"PATCH /channels/{channel_id}/messages/{message_id}": {"tts"}}


@cache
def _spec() -> dict[str, Any]:
    with gzip.open(HERE / "discord_openapi.json.gz", "rt", encoding="utf-8") as f:
        spec = dict(json.load(f))
    snowflake = spec["components"]["schemas"]["SnowflakeType"]
    spec["components"]["schemas"]["SnowflakeType"] = {"anyOf": [snowflake, {"type": "integer", "minimum": 0}]}
    return spec


@cache
def _registry() -> Registry[Any]:
    return Registry().with_resource(URN, Resource.from_contents(_spec(), default_specification=DRAFT202012))


@cache
def _routes() -> list[tuple[re.Pattern[str], str]]:
    """Each path template as a pattern; templates with more literal segments first (``/users/@me``
    before ``/users/{user_id}``)."""
    templates = sorted(_spec()["paths"], key=lambda t: (-sum(not s.startswith("{") for s in t.split("/")), t))
    return [
        (re.compile("^" + "/".join("[^/]+" if s.startswith("{") else re.escape(s) for s in t.split("/")) + "$"), t)
        for t in templates
    ]


def route(path: str) -> str | None:
    """The spec's path template for ``path`` (``/channels/1/messages`` → ``/channels/{channel_id}/messages``)."""
    return next((template for pattern, template in _routes() if pattern.match(path)), None)


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(_anchored(schema), registry=_registry())


def _anchored(schema: Any) -> Any:
    """``schema`` with its local ``$ref``s pointed into the spec's resource."""
    if isinstance(schema, dict):
        return {
            k: (f"{URN}{v}" if k == "$ref" and isinstance(v, str) and v.startswith("#") else _anchored(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_anchored(v) for v in schema]
    return schema


def _resolved(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = _spec()["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _names(schema: dict[str, Any]) -> set[str] | None:
    """The top-level fields an object schema names (through ``allOf``); None when it names none."""
    schema = _resolved(schema)
    names = set(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        names |= _names(part) or set()
    return names or None


def problems(verb: str, path: str, query: dict[str, str], content_type: str, body: Any) -> list[str]:
    """Why Discord's spec refuses this request (empty: it takes it). ``path`` is under ``/api/v10``."""
    template = route(path)
    if template is None:
        return [f"{verb} {path}: no such route in Discord's spec"]
    item = _spec()["paths"][template]
    operation = item.get(verb.lower())
    if operation is None:
        verbs = "/".join(v.upper() for v in item if v != "parameters")
        return [f"{verb} {template}: the spec lists {verbs}"]
    found = _query_problems(verb, template, operation, query)
    request = operation.get("requestBody")
    if verb in ("POST", "PUT", "PATCH") and request is not None:
        kind = content_type.split(";")[0].strip().lower()
        schemas = request.get("content", {})
        if kind not in schemas:
            return [*found, f"{verb} {template}: takes {', '.join(schemas)}, not {kind or 'no body'}"]
        schema = schemas[kind].get("schema", {})
        for error in _validator(schema).iter_errors(body):
            where = "/".join(str(p) for p in error.absolute_path) or "body"
            found.append(f"{verb} {template}: {where}: {_rule(error)}")
        names = _names(schema)
        if names is not None and isinstance(body, dict):
            ignored = IGNORED_FIELDS.get(f"{verb} {template}", set())
            found += [f"{verb} {template}: unknown field {name!r}" for name in body if name not in names | ignored]
    return found


def _query_problems(verb: str, template: str, operation: dict[str, Any], query: dict[str, str]) -> list[str]:
    params = {p["name"]: p for p in operation.get("parameters", []) if p.get("in") == "query"}
    found = []
    for name, value in query.items():
        param = params.get(name)
        if param is None:
            found.append(f"{verb} {template}: unknown query parameter {name!r}")
            continue
        schema = _resolved(param.get("schema", {}))
        typed: Any = value
        if schema.get("type") == "integer" and value.lstrip("-").isdigit():
            typed = int(value)
        elif schema.get("type") == "boolean" and value in BOOLEANS:
            typed = BOOLEANS[value]
        for error in _validator(param.get("schema", {})).iter_errors(typed):
            found.append(f"{verb} {template}: query {name}: {_rule(error)}")
    return found


def _rule(error: Any) -> str:
    """The schema rule a value broke, short (``maxLength 256``), not the value itself."""
    value = error.validator_value
    shown = value if isinstance(value, int | float | str) and len(str(value)) < 60 else ""
    return f"breaks {error.validator} {shown}".rstrip()
