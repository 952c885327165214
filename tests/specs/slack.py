"""Slack Web API calls checked against Slack's published OpenAPI (Swagger 2.0) spec.

Every call to the Slack stand-in goes through ``SlackSpec.problems``: the method must exist, the
HTTP verb and the content type must be ones Slack takes for it, no argument may be unknown, every
required one must be there, and typed ones must parse. ``slack_additions.json`` adds what Slack
documents today but the spec (last updated 2021) does not have, each with its documentation link.
"""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
FORM, JSON = "application/x-www-form-urlencoded", "application/json"


@cache
def _spec() -> dict[str, Any]:
    with gzip.open(HERE / "slack_web_openapi_v2.json.gz", "rt", encoding="utf-8") as f:
        return dict(json.load(f))


@cache
def _additions() -> dict[str, Any]:
    return dict(json.loads((HERE / "slack_additions.json").read_text()))


class Method:
    """One Web API method as the spec (and the additions) describe it."""

    def __init__(self, name: str, verbs: list[str], consumes: list[str], params: dict[str, tuple[bool, str]]) -> None:
        everywhere = {k: (False, "string") for k in _additions().get("everywhere", {})}
        self.name, self.verbs, self.consumes, self.params = name, verbs, consumes, everywhere | params

    @classmethod
    def named(cls, name: str) -> Method | None:
        added = _additions()["methods"].get(name)
        if added is not None:
            params = {k: (bool(required), "string") for k, required in added["params"].items()}
            return cls(name, added["verbs"], added["consumes"], params)
        path = _spec()["paths"].get("/" + name)
        if path is None:
            return None
        verbs, consumes, params = [], [], {}
        for verb, operation in path.items():
            verbs.append(verb)
            consumes += operation.get("consumes", [])
            for param in operation.get("parameters", []):
                params[param["name"]] = (bool(param.get("required")), param.get("type", "string"))
        for extra in _additions()["arguments"].get(name, {}):
            params.setdefault(extra, (False, "string"))
        return cls(name, verbs, sorted(set(consumes)), params)


def problems(verb: str, method: str, content_type: str, arguments: dict[str, Any], bearer: bool) -> list[str]:
    """Why Slack would not take this call as sent (empty: it would). ``arguments`` are the query and body
    arguments together; ``bearer``: the token came in the Authorization header."""
    spec = Method.named(method)
    if spec is None:
        return [f"{method}: no such method in Slack's spec"]
    return _transport(spec, verb.lower(), content_type.split(";")[0].strip().lower()) + _arguments(spec, arguments, bearer)


def _transport(spec: Method, verb: str, kind: str) -> list[str]:
    """The verb and the content type: GET or POST for every method; a JSON body by POST, where the spec has it."""
    found = []
    if verb not in ("get", "post"):  # slack_additions.json: "verbs"
        found.append(f"{spec.name}: the spec lists {'/'.join(v.upper() for v in spec.verbs)}, got {verb.upper()}")
    if kind == JSON:
        if verb != "post":
            found.append(f"{spec.name}: a JSON body must be sent by POST")
        if JSON not in spec.consumes:
            found.append(f"{spec.name}: takes {' or '.join(spec.consumes)}, not a JSON body (Slack ignores JSON for it)")
    elif kind and kind != FORM:
        found.append(f"{spec.name}: content type {kind!r} is not one Slack reads")
    return found


def _arguments(spec: Method, arguments: dict[str, Any], bearer: bool) -> list[str]:
    """No unknown argument, every required one (the token may come as a bearer header), typed ones parse."""
    found = [f"{spec.name}: unknown argument {name!r}" for name in arguments if name not in spec.params]
    for name, (required, kind) in spec.params.items():
        if required and name not in arguments and not (name == "token" and bearer):
            found.append(f"{spec.name}: missing required argument {name!r}")
        if name in arguments and not _parses(arguments[name], kind):
            found.append(f"{spec.name}: argument {name!r} should be {kind}, got {arguments[name]!r:.40}")
    return found


def _parses(value: Any, kind: str) -> bool:
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or str(value).lstrip("-").isdigit()
    if kind == "boolean":
        return isinstance(value, bool) or str(value).lower() in ("true", "false", "1", "0")
    if kind == "number":
        try:
            float(value)
        except (TypeError, ValueError):
            return False
    return True


def scopes(method: str) -> list[str]:
    """The scopes that let a bot call ``method`` (any one of them; empty: none needed), today's names."""
    added = _additions()["scopes"]
    if method in added["methods"]:
        return list(added["methods"][method])
    found: list[str] = []
    for operation in _spec()["paths"].get("/" + method, {}).values():
        for requirement in operation.get("security", []):
            found += requirement.get("slackAuth", [])
    names = [added["renamed"].get(scope, scope) for scope in found if scope != "none"]
    return list(dict.fromkeys(names))
