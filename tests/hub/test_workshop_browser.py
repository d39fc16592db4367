"""A workshop end to end in Chromium: two learners log in to the hub and talk from JupyterLab
through the broker (one in each mode), the instructor watches and ends a call from the broker's
page, and the instructor's sentinel key is nowhere a learner could see it."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Page

from ..e2e.conftest import Lab, write_notebook
from .conftest import SENTINEL, Hub

# The README's screenshot (docs/images/instructor-page.png) is a copy of this one.
SHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"
PASSWORD = "workshop-password"
NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "workshop.ipynb"


class HubLab:
    """What tests/e2e's Lab needs of a server: a learner's JupyterLab on the hub."""

    def __init__(self, hub: Hub, user: str) -> None:
        self.url = f"{hub.url}/user/{user}"

    def lab_url(self, notebook: str) -> str:
        return f"{self.url}/lab/tree/{notebook}"


async def log_in(page: Page, hub: Hub, user: str) -> None:
    await page.goto(f"{hub.url}/hub/login")
    await page.fill("input[name=username]", user)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("input[type=submit], button[type=submit]")
    await page.wait_for_url(f"**/user/{user}/**", timeout=90_000)


def learner_env_and_kernels(hub: Hub, user: str) -> str:
    """Every environment of the learner's server and kernels (their processes' environ)."""
    home = str(hub.state / "home" / user)
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.readlink(proc / "cwd").startswith(home):
                found.append((proc / "environ").read_bytes().decode(errors="replace"))
        except OSError:
            continue
    assert found, f"no process of {user}'s server was found"
    return "\n".join(found)


async def learner_talks(
    context: BrowserContext, hub: Hub, user: str, mode: str
) -> tuple[Lab, list[str]]:
    frames: list[str] = []
    page = await context.new_page()
    page.on(
        "websocket",
        lambda ws: (
            ws.on("framesent", lambda p: frames.append(str(p))),
            ws.on("framereceived", lambda p: frames.append(str(p))),
        ),
    )
    hub.learner(user, "learners")
    await log_in(page, hub, user)
    home = hub.state / "home" / user
    home.mkdir(parents=True, exist_ok=True)
    name = write_notebook(
        home,
        "talk.ipynb",
        [
            "from realtime_widget import RealtimeWidget\n"
            f'w = RealtimeWidget(mode="{mode}", turn_detection=None)\nw'
        ],
    )
    lab = Lab(page, HubLab(hub, user))  # type: ignore[arg-type]
    await lab.open(name)
    await lab.run_all()
    await page.locator(".rtw-connect").click()
    await lab.wait_kernel("w.status == 'connected'", timeout=60)
    assert await lab.kernel_json("w.endpoint.name") == "hub"
    await lab.kernel('w.say("hello")')
    await lab.wait_kernel("any(t.text == 'You said: hello' for t in w.transcript)")
    return lab, frames


async def workshop_notebook_passes(context: BrowserContext, hub: Hub) -> None:
    import shutil

    hub.learner("wes", "learners")
    page = await context.new_page()
    await log_in(page, hub, "wes")
    home = hub.state / "home" / "wes"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(NOTEBOOK, home)
    lab = Lab(page, HubLab(hub, "wes"))  # type: ignore[arg-type]
    await lab.open("workshop.ipynb")
    await lab.run_all()
    await lab.wait_kernel("'w' in globals() and w.status == 'closed'", timeout=120)
    assert await lab.kernel_json("endpoint") == "hub"
    text = "\n".join(await lab.outputs())
    assert text.count("✓") == 3 and "✗" not in text, text


async def test_two_learners_talk_through_the_broker_and_the_instructor_ends_a_call(
    hub: Hub, browser: Browser
) -> None:
    contexts = [await browser.new_context(permissions=["microphone"]) for _ in range(4)]
    try:
        ria, ria_frames = await learner_talks(contexts[0], hub, "ria", "ephemeral")
        rob, rob_frames = await learner_talks(contexts[1], hub, "rob", "relay")
        # The instructor's page, through the hub's OAuth: both learners, their calls live.
        hub.learner("teach", "learners", "instructors")
        page = await contexts[2].new_page()
        await log_in(page, hub, "teach")
        await page.goto(hub.broker)
        await page.locator("#active td", has_text="ria").first.wait_for(timeout=30_000)
        await page.locator("#learners td", has_text="rob").first.wait_for()
        SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SHOTS / "instructor-page.png"), full_page=True)
        # The kill switch for one learner: ria's call ends, rob's goes on.
        await page.locator("#learners tr", has_text="ria").locator("button").click()
        await ria.wait_kernel("w.status == 'closed'", timeout=30)
        assert await rob.kernel_json("w.status") == "connected"
        # A learner gets no instructor's page.
        learner_page = await contexts[1].new_page()
        response = await learner_page.goto(hub.broker + "api/usage")
        assert response is not None and response.status == 403
        # The instructor's key is nowhere a learner could see it.
        for lab, frames, user in ((ria, ria_frames, "ria"), (rob, rob_frames, "rob")):
            await lab.kernel("w.disconnect()")
            await lab.page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
            await lab.page.wait_for_function(
                "() => !window.jupyterapp.shell.currentWidget.context.model.dirty"
            )
            dom = await lab.page.evaluate("() => document.documentElement.outerHTML")
            saved = (hub.state / "home" / user / "talk.ipynb").read_text()
            kernel_env = await lab.kernel("import os; print(dict(os.environ))")
            assert frames and any("realtime" in f for f in frames)
            for where, text in [
                ("websocket frames", "\n".join(frames)),
                ("DOM", dom),
                ("saved notebook", saved),
                ("kernel environment", kernel_env),
                ("server and kernel processes", learner_env_and_kernels(hub, user)),
            ]:
                assert SENTINEL not in text, f"the instructor's key reached {user}'s {where}"
        assert SENTINEL not in (hub.state / "hub.log").read_text(errors="replace")
        # The learners' notebook through the broker: every exercise's check says ✓.
        await workshop_notebook_passes(contexts[3], hub)
    finally:
        for context in contexts:
            await context.close()
