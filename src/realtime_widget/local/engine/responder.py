"""What the local model says and does: a pure function of the conversation and the tools.

``plan()`` reads the response's input items (the last one decides) and the tools on offer, and
returns what the response will be: a spoken or written reply, a function call, a call to an
MCP server's tool, or a request to approve one. The rules are the engine's contract (see the
package docstring), so tests and workshops can predict every reply.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .mcp import McpServer
from .state import Item, quote

TOOL_REQUEST = re.compile(
    r"\b(?:call|use|run)\s+(?:the\s+)?(?:tool\s+)?`?(?P<name>[A-Za-z_][\w.-]*)`?"
    r"(?:\s+(?:tool|function))?(?:\s+with\s+(?P<args>.+))?",
    re.IGNORECASE | re.DOTALL,
)


def _parse_value(raw: str) -> Any:
    raw = raw.strip().rstrip(".!?")
    try:
        return json.loads(raw)
    except ValueError:
        pass
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    return raw


def parse_tool_arguments(text: str) -> dict[str, Any]:
    """``{"a": 1}`` or ``a=1, b=two and c=true`` → a dict; anything else → ``{}``."""
    text = text.strip().rstrip(".!?").strip()
    start = text.find("{")
    if start >= 0:
        try:
            value, _ = json.JSONDecoder().raw_decode(text[start:])
        except ValueError:
            value = None
        if isinstance(value, dict):
            return value
    args: dict[str, Any] = {}
    for part in re.split(r",|\band\b", text):
        key, sep, value = part.partition("=")
        if sep and key.strip().isidentifier():
            args[key.strip()] = _parse_value(value)
    return args


@dataclass(frozen=True)
class Plan:
    """What a response does: ``kind`` is ``text`` (say ``reply``), ``call`` (a function call),
    ``mcp`` (call an MCP server's tool) or ``approval`` (ask to approve that call first)."""

    kind: str
    reply: str = ""
    name: str = ""
    arguments: dict[str, Any] | None = None
    server: McpServer | None = None
    approval_request_id: str | None = None


def _images(count: int) -> str:
    return "I see an image." if count == 1 else f"I see {count} images."


def plan(
    entries: list[Item],
    *,
    functions: list[dict[str, Any]],
    choice: Any,
    servers: dict[str, McpServer],
) -> Plan:
    """What the model does with this input (see the module docstring)."""
    last = entries[-1] if entries else None
    item = last.item if last is not None else None
    if item is not None and item["type"] == "function_call_output":
        name = next(
            (
                e.item["name"]
                for e in entries
                if e.item["type"] == "function_call" and e.item.get("call_id") == item["call_id"]
            ),
            "requested",
        )
        return Plan("text", f"The {name} tool returned: {quote(item['output'])}")
    if item is not None and item["type"] == "mcp_approval_response":
        asked = next(
            (e.item for e in entries if e.item.get("id") == item["approval_request_id"]), None
        )
        if asked is None or asked["type"] != "mcp_approval_request":
            return Plan("text", "There is no approval request of that id to answer.")
        server = servers.get(asked["server_label"])
        if not item["approve"] or server is None:
            return Plan("text", f"The {asked['name']} call was not approved, so I did not make it.")
        arguments = json.loads(asked["arguments"] or "{}")
        return Plan("mcp", name=asked["name"], arguments=arguments, server=server,
                    approval_request_id=asked["id"])  # fmt: skip
    text, images = "", 0
    if item is not None and item["type"] == "message" and item["role"] == "user":
        content = item["content"]
        text = " ".join(p.get("text") or "" for p in content if p["type"] == "input_text").strip()
        images = sum(1 for p in content if p["type"] == "input_image")
        if last is not None and last.idle:
            return Plan("text", "Are you still there?")
        if not text and not images and any(p["type"] == "input_audio" for p in content):
            seconds = (last.audio_ms if last is not None else 0) / 1000
            return Plan("text", f"I heard {seconds:.1f} seconds of audio.")
    found = _tool_plan(text, functions, choice, servers)
    if found is not None:
        return found
    if text:
        said = f"You said: {quote(text)}"
        return Plan("text", f"{_images(images)} {said}" if images else said)
    if images:
        return Plan("text", _images(images))
    return Plan("text", "Hello from the local realtime server.")


def _tool_plan(
    text: str, functions: list[dict[str, Any]], choice: Any, servers: dict[str, McpServer]
) -> Plan | None:
    if choice == "none":
        return None
    match = TOOL_REQUEST.search(text) if text else None
    name = match.group("name") if match else None
    arguments = parse_tool_arguments(match.group("args") or "") if match else {}
    by_name = {t["name"]: t for t in functions}
    if name in by_name:
        if isinstance(choice, dict) and choice.get("type") == "function":
            name = choice["name"]
        return Plan("call", name=str(name), arguments=arguments)
    for server in servers.values():
        if name is not None and server.offers(name):
            kind = "approval" if server.needs_approval(name) else "mcp"
            return Plan(kind, name=name, arguments=arguments, server=server)
    forced = functions and (choice == "required" or isinstance(choice, dict))
    if forced:
        forced_name = choice["name"] if isinstance(choice, dict) else functions[0]["name"]
        return Plan("call", name=forced_name, arguments=arguments)
    return None
