"""Responses and tool calls, kept in order on the kernel's side.

The API refuses a second ``response.create`` while one is active
(``conversation_already_has_active_response``), and a tool's output does not trigger a reply by
itself. :class:`Turns` keeps the active response, queues response requests behind it (re-queuing
one the server refused in a race), runs the Python tools the model calls, sends their outputs,
and asks for the follow-up once the response is done and every call in it has answered.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from .tools import ToolRegistry, ToolResult, run_tool


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


Send = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
# The server events Turns follows (the session routes only these to it).
FOLLOWS = frozenset(
    {"response.created", "response.done", "response.function_call_arguments.done", "error"}
)
Spawn = Callable[[Coroutine[Any, Any, Any]], None]


@dataclass
class _Response:
    id: str
    calls: set[str] = field(default_factory=set)  # call ids still running
    had_calls: bool = False
    done: bool = False
    metadata: dict[str, Any] | None = None  # the response.create's, carried to the follow-up


class Turns:
    """Which response is active, what waits behind it, and the tool calls in flight."""

    def __init__(
        self,
        *,
        send: Send,
        spawn: Spawn,
        tools: ToolRegistry,
        on_tool_result: Callable[[ToolResult, str], None] | None = None,
    ) -> None:
        self._send = send
        self._spawn = spawn
        self.tools = tools
        self._on_tool_result = on_tool_result
        self._lock = threading.RLock()
        self.active: str | None = None
        self._responses: dict[str, _Response] = {}
        self._queue: deque[dict[str, Any]] = deque()
        self._sent: dict[str, dict[str, Any]] = {}  # response.create events sent, by event_id
        self._waiting_create = False  # a response.create is on its way, no response.created yet
        self.results: list[ToolResult] = []

    def request_response(self, event: dict[str, Any]) -> None:
        """Send a (validated) ``response.create`` now, or once the active response is done."""
        with self._lock:
            if self._busy():
                self._queue.append(event)
                return
            self._waiting_create = True
            self._sent[event["event_id"]] = event
        self._send([event])

    def _busy(self) -> bool:
        if self.active is not None or self._waiting_create:
            return True
        return any(r.calls for r in self._responses.values())

    def _flush(self) -> None:
        with self._lock:
            if self._busy() or not self._queue:
                return
            event = self._queue.popleft()
            self._waiting_create = True
            self._sent[event["event_id"]] = event
        self._send([event])

    def reset(self) -> None:
        """A call ended: nothing is active and nothing waits."""
        with self._lock:
            self.active = None
            self._waiting_create = False
            self._queue.clear()
            self._responses.clear()
            self._sent.clear()

    def apply(self, event: dict[str, Any]) -> None:
        """Follow one server event."""
        kind = event.get("type")
        if kind == "response.created":
            response = _dict(event.get("response"))
            conversation = response.get("conversation_id")
            with self._lock:
                self._waiting_create = False
                if isinstance(response.get("id"), str) and conversation is not None:
                    self.active = response["id"]
                    metadata = response.get("metadata")
                    self._responses[response["id"]] = _Response(
                        response["id"], metadata=metadata if isinstance(metadata, dict) else None
                    )
        elif kind == "response.done":
            response = _dict(event.get("response"))
            with self._lock:
                if response.get("id") == self.active:
                    self.active = None
                response_id = response.get("id")
                state = self._responses.get(response_id) if isinstance(response_id, str) else None
                if state is not None:
                    state.done = True
            self._follow_up(state)
            self._flush()
        elif kind == "response.function_call_arguments.done":
            self._call(event)
        elif kind == "error":
            self._refused(_dict(event.get("error")))

    def _refused(self, error: dict[str, Any]) -> None:
        with self._lock:
            sent = self._sent.pop(str(error.get("event_id")), None)
            if sent is None:
                return
            self._waiting_create = False
            if error.get("code") == "conversation_already_has_active_response":
                # A response we did not see start (server VAD, another client): try again after.
                self._queue.appendleft(sent)
                if self.active is None:
                    self.active = "unknown"

    def _call(self, event: dict[str, Any]) -> None:
        call_id, name = event.get("call_id"), event.get("name")
        if not isinstance(call_id, str) or not call_id or not isinstance(name, str):
            return  # not a call anyone could answer
        response_id = str(event.get("response_id", ""))
        with self._lock:
            state = self._responses.setdefault(response_id, _Response(response_id))
            state.calls.add(call_id)
            state.had_calls = True
        self._spawn(self._run(state, call_id, name, str(event.get("arguments", ""))))

    async def _run(self, state: _Response, call_id: str, name: str, arguments: str) -> None:
        result = await run_tool(self.tools, name, call_id, arguments)
        self.results.append(result)
        if self._on_tool_result is not None:
            self._on_tool_result(result, state.id)
        item = {"type": "function_call_output", "call_id": call_id, "output": result.output}
        try:
            self._send([{"type": "conversation.item.create", "item": item}])
        except ValueError as exc:  # InvalidEventError: e.g. an output too big for the channel
            # The model waits for an answer to its call: it gets one saying why (the full
            # result stays in Python, in ``results``).
            item["output"] = json.dumps({"error": f"The tool's output was not sent: {exc}"})
            self._send([{"type": "conversation.item.create", "item": item}])
        with self._lock:
            state.calls.discard(call_id)
        self._follow_up(state)
        self._flush()

    def _follow_up(self, state: _Response | None) -> None:
        """After a response with tool calls is done and all have answered: ask for the reply."""
        if state is None:
            return
        with self._lock:
            ready = state.done and state.had_calls and not state.calls
            if ready:
                state.had_calls = False
                self._responses.pop(state.id, None)
            elif state.done and not state.had_calls:
                self._responses.pop(state.id, None)
        if ready:
            from ..events import prepare

            # The reply continues the request that called the tools: it keeps its metadata, so
            # whoever tagged the request (ask()) can tell the reply from other responses.
            follow_up: dict[str, Any] = {"type": "response.create"}
            if state.metadata:
                follow_up["response"] = {"metadata": state.metadata}
            self._queue_front(prepare(follow_up))

    def _queue_front(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._queue.appendleft(event)
