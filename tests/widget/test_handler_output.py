"""Handler output goes into the output area of the cell that registered the handler.

The end-to-end check (a print in JupyterLab's cell) is in tests/e2e/test_widget_lab.py; here the
routing itself: which writes go to the area, which stay where they were, threads and tasks.
"""

from __future__ import annotations

import asyncio
import sys
import threading

from realtime_widget.cell_output import _TAIL, CellOutput


def texts(output: CellOutput) -> list[tuple[str, str]]:
    return [(o["name"], o["text"]) for o in output.widget.outputs]


def test_prints_and_errors_inside_a_capture_go_to_the_area_and_nothing_else_does(
    capsys: object,
) -> None:
    output = CellOutput(show=False)
    print("before")
    with output.capture():
        print("tokens:", 42)
        print("careful", file=sys.stderr)  # where warnings and tracebacks are written
        print("after the warning")
    print("outside")
    got = texts(output)
    assert got[0] == ("stdout", "tokens: 42\n")
    assert got[1][0] == "stderr" and "careful" in got[1][1]
    assert got[2] == ("stdout", "after the warning\n")
    assert "outside" not in "".join(t for _, t in got)


def test_another_thread_writing_meanwhile_is_not_captured() -> None:
    output = CellOutput(show=False)
    inside = threading.Event()
    done = threading.Event()
    seen: list[str] = []

    class Tee:
        def write(self, text: str) -> int:
            seen.append(text)
            return len(text)

        def flush(self) -> None:
            pass

    def other() -> None:
        inside.wait(5)
        sys.stdout.write("from another thread\n")
        done.set()

    worker = threading.Thread(target=other)
    original = sys.stdout
    sys.stdout = Tee()  # type: ignore[assignment]
    try:
        worker.start()
        with output.capture():
            print("handler")
            inside.set()
            assert done.wait(5)
        worker.join(5)
    finally:
        sys.stdout = original
    assert texts(output) == [("stdout", "handler\n")]
    assert "from another thread\n" in seen


def test_a_coroutine_handler_keeps_its_area_across_awaits_and_other_tasks_do_not_share_it() -> None:
    output = CellOutput(show=False)

    async def handler() -> None:
        with output.capture():
            print("one")
            await asyncio.sleep(0)
            print("two")

    async def bystander() -> None:
        await asyncio.sleep(0)
        print("bystander")

    async def main() -> None:
        await asyncio.gather(handler(), bystander())

    asyncio.run(main())
    assert texts(output) == [("stdout", "one\ntwo\n")]


def test_a_chatty_handler_keeps_only_the_tail() -> None:
    output = CellOutput(show=False)
    with output.capture():
        for i in range(5000):
            print(f"line {i}")
    text = "".join(t for _, t in texts(output))
    assert len(text) <= _TAIL
    assert text.endswith("line 4999\n")
