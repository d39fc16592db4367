"""Handler output where the user looks: in the cell that registered the handler.

A handler (``@w.on("response.done")``) runs when its event reaches the kernel, long after its
cell finished, on the thread of a widget message. What it prints would go to that message's
parent, which JupyterLab shows only in its log console (hidden by default). So when ``on()`` is
called from a cell, an output area (an ``ipywidgets.Output``) is displayed in that cell, and the
handler's prints, warnings and tracebacks are routed into it.

The routing costs nothing per event: the output area listens for one message id of its own,
set once, and while a handler runs its thread's stdout/stderr name that id as their parent
(ipykernel's per-thread parent header). Outside ipykernel, handlers run as they are.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import secrets
import sys
import threading
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from .redact import redact

Handler = Callable[[dict[str, Any]], Any]
_KEEP = 64  # cells remembered (one output area each)


class CellOutput:
    """An output area shown in one cell, that handlers' output goes to."""

    def __init__(self) -> None:
        import ipywidgets
        from IPython.display import display

        self.msg_id = "rtw-handler-output-" + secrets.token_hex(8)
        self.widget = ipywidgets.Output()
        self.widget.msg_id = self.msg_id  # the page's output area listens for this id
        display(self.widget)  # type: ignore[no-untyped-call]

    @contextlib.contextmanager
    def capture(self) -> Iterator[None]:
        parent = {"msg_id": self.msg_id, "msg_type": "execute_request", "session": "", "date": ""}
        streams: list[Any] = [
            s for s in (sys.stdout, sys.stderr) if hasattr(s, "set_thread_parent")
        ]
        tokens = [(s, s.set_thread_parent({"header": parent})) for s in streams]
        try:
            yield
        finally:
            for stream, token in tokens:
                stream.flush()
                stream.reset_thread_parent(token)


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
