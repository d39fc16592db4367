"""Remote MCP servers, simulated: one built-in demo server, listed, called and approved as the
Realtime API does it.

A session tool ``{"type": "mcp", "server_label": L, "server_url": "local://demo"}`` is the demo
server: it offers ``add`` (``a + b``) and ``echo`` (``text``). When a session gets an MCP tool,
its tools are listed (an ``mcp_list_tools`` item, ``mcp_list_tools.in_progress`` then
``.completed``; any other URL: ``.failed``, since this server reaches no network). A call is
asked for with the same phrasing as a function tool (``call add with a=1, b=2``). Without
approval (``require_approval: "never"``, or a filter naming the tool under ``never``) the
response runs it: an ``mcp_call`` item, its arguments streamed
(``response.mcp_call_arguments.delta/done``), ``response.mcp_call.in_progress`` then
``.completed`` (or ``.failed``, with the error on the item), then a spoken or written reply
saying what it returned. Otherwise (the API's default) the response ends with an
``mcp_approval_request`` item; a ``conversation.item.create`` of an ``mcp_approval_response``
and a ``response.create`` then run the call (approved) or say it was not made (denied).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .state import Event, Output, Response, State, new_id

DEMO_URL = "local://demo"
DEMO_TOOLS: list[dict[str, Any]] = [
    {
        "name": "add",
        "description": "Add two numbers.",
        "input_schema": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        },
    },
    {
        "name": "echo",
        "description": "Say the text back.",
        "input_schema": {
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
        },
    },
]


def _named(value: Any) -> list[str] | None:
    """The tool names of an allowed-tools or approval filter (``None``: no names given)."""
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, dict) and isinstance(value.get("tool_names"), list):
        return [str(v) for v in value["tool_names"]]
    return None


@dataclass
class McpServer:
    """One MCP server a session declared: its label, URL, tools and approval rule."""

    label: str
    url: str
    require_approval: Any = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    reachable: bool = False

    @classmethod
    def from_tool(cls, tool: dict[str, Any]) -> McpServer:
        server = cls(tool["server_label"], str(tool.get("server_url") or ""))
        server.require_approval = tool.get("require_approval")
        server.reachable = server.url == DEMO_URL
        allowed = _named(tool.get("allowed_tools"))
        if server.reachable:
            server.tools = [t for t in DEMO_TOOLS if allowed is None or t["name"] in allowed]
        return server

    def offers(self, name: str) -> bool:
        return any(t["name"] == name for t in self.tools)

    def needs_approval(self, name: str) -> bool:
        rule = self.require_approval
        if rule == "never":
            return False
        if isinstance(rule, dict):
            never = _named(rule.get("never"))
            always = _named(rule.get("always"))
            if never is not None and name in never:
                return False
            if always is not None and name in always:
                return True
        return True  # the API's default: ask before anything reaches the server

    def call(self, name: str, arguments: dict[str, Any]) -> tuple[str | None, str | None]:
        """``(output, None)`` or ``(None, error message)``."""
        try:
            if name == "add":
                total = float(arguments["a"]) + float(arguments["b"])
                return (str(int(total)) if total.is_integer() else str(total)), None
            if name == "echo":
                return str(arguments["text"]), None
        except (KeyError, TypeError, ValueError) as exc:
            return None, f"{name} failed: bad arguments ({exc!r})."
        return None, f"The {self.label} server has no tool {name!r}."


class McpServers(State):
    """Listing the MCP servers a session declares, and their calls and approvals in responses."""

    def _mcp_servers(self) -> dict[str, McpServer]:
        tools = self.session.get("tools") or []
        return {
            t["server_label"]: McpServer.from_tool(t)
            for t in tools
            if isinstance(t, dict) and t.get("type") == "mcp"
        }

    def _list_mcp_tools(self) -> None:
        """List the tools of each MCP server the session has not listed yet."""
        for label, server in self._mcp_servers().items():
            if label in self._listed:
                continue
            self._listed.add(label)
            item: dict[str, Any] = {
                "id": new_id("item_"),
                "type": "mcp_list_tools",
                "server_label": label,
                "tools": [],
            }
            previous = self._append_item_dict(item)
            self._send(
                {"type": "conversation.item.added", "previous_item_id": previous, "item": item}
            )
            self._send({"type": "mcp_list_tools.in_progress", "item_id": item["id"]})
            if server.reachable:
                item["tools"] = [dict(t) for t in server.tools]
                self._send({"type": "mcp_list_tools.completed", "item_id": item["id"]})
            else:
                self._send({"type": "mcp_list_tools.failed", "item_id": item["id"]})
            self._send(
                {"type": "conversation.item.done", "previous_item_id": previous, "item": item}
            )

    def _append_item_dict(self, item: dict[str, Any]) -> str | None:
        from .state import Item

        return self._append_item(Item(item))

    def _add_output(self, response: Response, item: dict[str, Any]) -> Output:
        raise NotImplementedError

    def _close_output(self, response: Response, output: Output, status: str) -> None:
        raise NotImplementedError

    async def _stream_mcp_call(
        self,
        response: Response,
        server: McpServer,
        name: str,
        arguments: dict[str, Any],
        approval_request_id: str | None,
    ) -> str:
        """An ``mcp_call`` in the response; returns what to say of its result."""
        import asyncio

        item: dict[str, Any] = {
            "id": new_id("item_"),
            "type": "mcp_call",
            "server_label": server.label,
            "name": name,
            "arguments": "",
            "approval_request_id": approval_request_id,
            "output": None,
            "error": None,
        }
        output = self._add_output(response, item)
        ids: Event = {"response_id": response.id, "item_id": item["id"]}
        text = json.dumps(arguments)
        for start in range(0, len(text), 16):
            await asyncio.sleep(self.text_delay_s)
            self._send(
                {
                    "type": "response.mcp_call_arguments.delta",
                    **ids,
                    "output_index": output.index,
                    "delta": text[start : start + 16],
                }
            )
        item["arguments"] = text
        self._send(
            {"type": "response.mcp_call_arguments.done", **ids, "output_index": output.index,
             "arguments": text}
        )  # fmt: skip
        at = {"item_id": item["id"], "output_index": output.index}
        self._send({"type": "response.mcp_call.in_progress", **at})
        result, error = server.call(name, arguments)
        if error is None:
            item["output"] = result
            self._send({"type": "response.mcp_call.completed", **at})
            said = f"The {name} tool returned: {result}"
        else:
            item["error"] = {"type": "tool_execution_error", "message": error}
            self._send({"type": "response.mcp_call.failed", **at})
            said = f"The {name} tool failed: {error}"
        self._close_output(response, output, "completed")
        return said

    def _stream_approval_request(
        self, response: Response, server: McpServer, name: str, arguments: dict[str, Any]
    ) -> None:
        item: dict[str, Any] = {
            "id": new_id("mcpr_"),
            "type": "mcp_approval_request",
            "server_label": server.label,
            "name": name,
            "arguments": json.dumps(arguments),
        }
        output = self._add_output(response, item)
        self._close_output(response, output, "completed")
