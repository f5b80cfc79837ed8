"""An ASGI middleware that makes BentoML 1.4's responses match its own OpenAPI document.

Found by schemathesis: BentoML declares OpenAPI 3.0.2 but writes optional fields as
`anyOf: [..., {"type": "null"}]` (JSON Schema 2020, invalid in 3.0, so a null is "not an object"),
answers a malformed multipart request with a 500,
declares an error's `detail` as a string while sending pydantic's list of errors, and sends errors
raised by the service as a one-element list `[{"error": ...}]` where it documents an object.
This rewrites the schema (`nullable: true`, `detail` of any type), unwraps those error bodies and
answers non-JSON request bodies with a 415 before BentoML parses them. BentoML also replaces the
message of every 401 and 403 by "Authorization error"; `explain_auth`, when given, says why
(unknown key, expired key, role) from the request's own headers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import metadata
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _nullable(node: Any) -> Any:
    """anyOf [X, {type: null}] -> X with nullable: true (OpenAPI 3.0's way), recursively."""
    if isinstance(node, list):
        return [_nullable(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _nullable(v) for k, v in node.items()}
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = node.get(bound)
        if isinstance(value, int | float) and not isinstance(value, bool):
            node[limit], node[bound] = value, True  # 3.0 spells exclusive bounds as booleans
    if "default" in node and node["default"] is None and ("$ref" in node or "type" in node):
        node["nullable"] = True  # BentoML's flattened copy of an optional field loses its null
    options = node.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        node.pop("anyOf")
        if len(rest) == 1:
            node.update(rest[0])
        else:
            node["anyOf"] = rest
        node["nullable"] = True
    return node


def _inline_nullable_refs(node: Any, schemas: dict[str, Any]) -> Any:
    """A nullable $ref is inlined: 3.0 ignores every sibling of a $ref, nullable included."""
    if isinstance(node, list):
        return [_inline_nullable_refs(n, schemas) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _inline_nullable_refs(v, schemas) for k, v in node.items()}
    ref = node.get("$ref")
    if node.get("nullable") and isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        target = schemas.get(ref.rsplit("/", 1)[1], {})
        node.pop("$ref")
        node = {**target, **node}
    return node


INFO = {
    "title": "creditguard",
    "description": "Explained default scores, grades, credit limits and limit decisions for the "
    "clients of a receivables ledger. Every request needs an API key of a role that allows it "
    "(Authorization: Bearer <key>); see the project's README, section Serving.",
}


def _version() -> str:
    try:
        return metadata.version("creditguard")
    except metadata.PackageNotFoundError:
        return "0"


def fix_schema(doc: dict[str, Any]) -> dict[str, Any]:
    # BentoML's own description links badges from outside hosts: none in our document
    doc["info"] = {**doc.get("info", {}), **INFO}
    if doc["info"].get("version") in (None, "None"):
        doc["info"]["version"] = _version()
    doc = _nullable(doc)
    doc = _inline_nullable_refs(doc, doc.get("components", {}).get("schemas", {}))
    for name in ("InvalidArgument", "NotFound", "InternalServerError"):
        detail = doc.get("components", {}).get("schemas", {}).get(name, {}).get("properties", {})
        if "detail" in detail:
            detail["detail"] = {"title": "Error Detail", "description": "Message or field errors."}
    return doc


def fix_error(body: Any) -> Any:
    if isinstance(body, list) and len(body) == 1 and isinstance(body[0], dict):
        return body[0]
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list) and detail and all(isinstance(d, dict) for d in detail):
        for d in detail:
            d.pop("url", None)  # pydantic's link to its docs: no outside host in a response
        # pydantic's errors, headed "1 validation error for ScoreInIODescriptor": say which
        # fields and why instead
        body["error"] = "invalid request: " + "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', [])) or 'body'}: {d.get('msg', '')}"
            for d in detail[:10]
        )
    return body


class ConformingResponses:
    """Buffers /docs.json and JSON error responses and rewrites them; everything else streams."""

    def __init__(
        self, app: ASGIApp, explain_auth: Callable[[str, str | None], str] | None = None
    ) -> None:
        self.app = app
        self.explain_auth = explain_auth  # (path, Authorization header) -> message

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("method") == "POST":
            kind = dict(scope.get("headers", [])).get(b"content-type", b"application/json")
            if kind.split(b";")[0].strip().lower() not in (b"application/json", b""):
                # BentoML answers a multipart body without a boundary with a 500
                body = json.dumps(
                    {"error": "request bodies are JSON (Content-Type: application/json)"}
                )
                await send(
                    {
                        "type": "http.response.start",
                        "status": 415,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body.encode()})
                return
        is_docs = scope.get("path") == "/docs.json"
        start: Message | None = None
        status = 0
        chunks: list[bytes] = []

        async def wrapped(message: Message) -> None:
            nonlocal start, status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                kinds = dict(message.get("headers", []))
                is_json = kinds.get(b"content-type", b"").startswith(b"application/json")
                if (is_docs or status >= 400) and is_json:
                    start = message
                    return
                await send(message)
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            raw = b"".join(chunks)
            try:
                body = json.loads(raw)
                body = fix_schema(body) if is_docs else fix_error(body)
                if status in (401, 403) and self.explain_auth is not None:
                    auth = dict(scope.get("headers", [])).get(b"authorization")
                    header = auth.decode("latin-1") if auth is not None else None
                    body = {"error": self.explain_auth(str(scope.get("path", "")), header)}
                raw = json.dumps(body).encode()
            except ValueError:
                pass  # not JSON after all: pass it on untouched
            headers: list[tuple[bytes, bytes]] = [
                (k, v) for k, v in start.get("headers", []) if k != b"content-length"
            ]
            headers.append((b"content-length", str(len(raw)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": raw})

        await self.app(scope, receive, wrapped)
