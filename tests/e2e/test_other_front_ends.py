"""The widget in Voila (a dashboard, no code shown) and marimo (an app, and the editor), end to
end in Chromium against the local server.

Each app connects in the cell that displays the widget, as dashboards and apps are written: the
page is not listening yet, so the kernel must hold its messages until the page says hello. A
button then calls ``w.say`` in the kernel; the reply must reach the page, and the page's totals
(computed in the kernel from the events it received) must count the turn.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, Page
from playwright.async_api import TimeoutError as PlaywrightTimeout

from .apps import AppServer, marimo, voila
from .conftest import write_notebook

WAIT = 60_000  # ms: a cold kernel, the local server, the call's setup

WIDGET = 'RealtimeWidget(endpoint="local", turn_detection=None)'  # no VAD: only typed turns


@pytest.fixture(scope="module")
def voila_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    root = tmp_path_factory.mktemp("voila")
    write_notebook(
        root,
        "dashboard.ipynb",
        [
            "import ipywidgets as widgets\n"
            "from realtime_widget import RealtimeWidget\n"
            f"w = {WIDGET}\n"
            'hello = widgets.Button(description="Say hello")\n'
            'hello.on_click(lambda _: w.say("hello"))\n'
            "display(w, hello)\n"
            "w.connect()  # before the page listens: held until it says hello"
        ],
    )
    server = voila(root / "dashboard.ipynb", tmp_path_factory.mktemp("voila-state"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


MARIMO_APP = textwrap.dedent(
    f"""
    import marimo

    app = marimo.App()


    @app.cell
    def _():
        import marimo as mo
        from realtime_widget import RealtimeWidget

        w = {WIDGET}
        view = mo.ui.anywidget(w)
        w.connect()  # before the page listens: held until it says hello
        view
        return mo, w


    @app.cell
    def _(mo, w):
        hello = mo.ui.button(label="Say hello", on_click=lambda _: w.say("hello"))
        hello
        return


    @app.cell
    def _(mo, w):
        # A cell cannot await the page here: the widget must say so at once, not time out.
        try:
            w.wait_for("response.done")
            refusal = "no refusal"
        except RuntimeError as exc:
            refusal = str(exc)
        mo.plain_text(refusal)
        return


    if __name__ == "__main__":
        app.run()
    """
)


@pytest.fixture(scope="module", params=["run", "edit"])
def marimo_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppServer]:
    root = tmp_path_factory.mktemp("marimo")
    (root / "app.py").write_text(MARIMO_APP)
    server = marimo(root / "app.py", tmp_path_factory.mktemp("marimo-state"), request.param)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest_asyncio.fixture()
async def page(context: BrowserContext) -> AsyncIterator[Page]:
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    await page.close()
    assert not [e for e in errors if "rtw" in e or "realtime" in e.lower()], errors


async def says_hello_and_gets_the_reply(page: Page) -> None:
    # Connected by the cell that displayed the widget, with no click.
    await page.locator(".rtw-status", has_text="connected").first.wait_for(timeout=WAIT)
    await page.get_by_role("button", name="Say hello").click()
    await page.locator(".rtw-transcript", has_text="You said: hello").first.wait_for(timeout=WAIT)
    # The kernel received the events: its totals, synced back, count the turn.
    await page.locator(".rtw-totals", has_text="1 turn").first.wait_for(timeout=WAIT)


async def test_a_voila_dashboard_connects_as_it_renders_and_its_button_gets_a_reply(
    voila_app: AppServer, page: Page
) -> None:
    await page.goto(voila_app.url)
    await says_hello_and_gets_the_reply(page)
    # A dashboard shows no code.
    assert "RealtimeWidget(" not in await page.content()


async def test_a_marimo_app_connects_as_it_renders_and_its_button_gets_a_reply(
    marimo_app: AppServer, page: Page
) -> None:
    await page.goto(marimo_app.url)
    if "edit" in marimo_app.command:
        # The editor opens the notebook with its cells stale: run them all, as a user would.
        # The button shows before the editor's kernel link is up, and a click before that is
        # lost: click until the cells run (the widget's view appears), up to WAIT.
        run_stale = page.get_by_test_id("run-button").last
        view = page.locator(".rtw-status").first
        for _ in range(WAIT // 5_000):
            await run_stale.click(timeout=WAIT)
            try:
                await view.wait_for(timeout=5_000)
                break
            except PlaywrightTimeout:
                continue
    await says_hello_and_gets_the_reply(page)
    await page.get_by_text(
        "marimo hands widget messages to the kernel only between cells"
    ).wait_for()
    status = await page.locator(".rtw-status").first.text_content()
    assert status is not None and "closed" not in status, json.dumps(status)
