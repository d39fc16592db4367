"""Handler output where the user looks: in the cell that registered the handler.

A handler (``@w.on("response.done")``) runs when its event reaches the kernel, long after its
cell finished, on the thread of a widget message. What it prints would go to that message's
parent, which JupyterLab shows only in its log console (hidden by default). So when ``on()`` is
called from a cell, an output area (an ``ipywidgets.Output``) is displayed in that cell, and the
handler's prints, warnings and tracebacks are written into it.

They are written into its ``outputs`` state, not captured by message id: a front end follows an
Output's message id only while the cell that set it is still running (JupyterLab hooks the
request's live future), and these handlers run after it. ``sys.stdout`` and ``sys.stderr`` are
wrapped once by a router that sends a write to the output area named by a context variable, set
while a handler runs (in its thread, or its task when it is a coroutine); every other write goes
to the stream it wrapped, unchanged. Outside ipykernel, handlers run as they are.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import sys
import threading
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from .redact import redact

Handler = Callable[[dict[str, Any]], Any]
_KEEP = 64  # cells remembered (one output area each)
_TAIL = 20_000  # characters an output area keeps: a chatty handler must not grow it forever


class CellOutput:
    """An output area, shown in one cell, that handlers' output is written into."""

    def __init__(self, show: bool = True) -> None:
        import ipywidgets

        self.widget = ipywidgets.Output()
        self._chunks: list[list[str]] = []  # [[stream name, text]], consecutive names merged
        self._lock = threading.Lock()
        if show:
            from IPython.display import display

            display(self.widget)  # type: ignore[no-untyped-call]

    def write(self, name: str, text: str) -> None:
        if not text:
            return
        with self._lock:
            if self._chunks and self._chunks[-1][0] == name:
                self._chunks[-1][1] += text
            else:
                self._chunks.append([name, text])
            self._trim()
            outputs = tuple(
                {"output_type": "stream", "name": n, "text": t} for n, t in self._chunks
            )
        self.widget.outputs = outputs

    def _trim(self) -> None:
        size = sum(len(t) for _, t in self._chunks)
        while size > _TAIL and self._chunks:
            text = self._chunks[0][1]
            cut = min(len(text), size - _TAIL)
            if cut == len(text):
                self._chunks.pop(0)
            else:
                self._chunks[0][1] = text[cut:]
            size -= cut

    @contextlib.contextmanager
    def capture(self) -> Iterator[None]:
        _install_router()
        token = _target.set(self)
        try:
            yield
        finally:
            _target.reset(token)


_target: contextvars.ContextVar[CellOutput | None] = contextvars.ContextVar(
    "realtime_widget_handler_output", default=None
)


class _Router:
    """Stands in for ``sys.stdout``/``sys.stderr``: a write made while a handler runs goes to
    its output area, any other to the stream wrapped (everything else is the wrapped stream's)."""

    def __init__(self, name: str, stream: Any) -> None:
        self._name = name
        self._stream = stream

    def write(self, text: str) -> int:
        target = _target.get()
        if target is None:
            return int(self._stream.write(text) or 0)
        target.write(self._name, text)
        return len(text)

    def flush(self) -> None:
        if _target.get() is None:
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _install_router() -> None:
    """Wrap the current streams (again, if something replaced them since)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if not isinstance(stream, _Router):
            setattr(sys, name, _Router(name, stream))


_lock = threading.Lock()
_outputs: OrderedDict[str, CellOutput] = OrderedDict()


def _running_cell() -> str | None:
    """The msg_id of the cell being executed on this thread, or None (no IPython kernel, or a
    widget message rather than a cell)."""
    ip = _ipython()
    kernel = getattr(ip, "kernel", None)
    if kernel is None or not hasattr(kernel, "get_parent"):
        return None
    try:
        header = kernel.get_parent().get("header", {})
    except Exception:  # a kernel without a parent for this thread
        return None
    if header.get("msg_type") != "execute_request":
        return None
    msg_id = header.get("msg_id")
    return msg_id if isinstance(msg_id, str) else None


def _ipython() -> Any:
    if "IPython" not in sys.modules:
        return None
    from IPython import get_ipython

    return get_ipython()


def output_for_this_cell() -> CellOutput | None:
    """The output area of the running cell (made and shown on first use), or None."""
    cell = _running_cell()
    if cell is None:
        return None
    with _lock:
        found = _outputs.get(cell)
        if found is None:
            try:
                found = CellOutput()
            except Exception:  # no ipywidgets front end to show it: run handlers as they are
                return None
            _outputs[cell] = found
            while len(_outputs) > _KEEP:
                _outputs.popitem(last=False)
        return found


def route_to_cell(handler: Handler) -> Handler:
    """``handler`` made to print into the cell that registers it (see the module docstring).

    A handler that raises has its traceback shown there too, and the error goes on to the
    caller (which reports it as a notice).
    """
    output = output_for_this_cell()
    if output is None:
        return handler

    async def finish(coroutine: Any) -> Any:
        with output.capture():  # in the task's own context: prints after an await land too
            try:
                return await coroutine
            except Exception:
                sys.stderr.write(redact(traceback.format_exc()))
                raise

    @functools.wraps(handler)
    def run(event: dict[str, Any]) -> Any:
        with output.capture():
            try:
                result = handler(event)
            except Exception:
                sys.stderr.write(redact(traceback.format_exc()))
                raise
        return finish(result) if inspect.iscoroutine(result) else result

    run.shows_its_errors = True  # type: ignore[attr-defined]
    return run
