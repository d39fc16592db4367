"""The widget in JupyterLab and Chromium, each figure against a baseline measured in this run:

- connect: the widget vs the plain page, both from the click (key mint included) to the data
  channel open, and to the model's first audio for a greeting (goal: within 1.10×); and a
  GPT-Live call (the kernel's relay, ICE gathered before the offer, up at session.started)
  against the Realtime call, in the same run;
- event round trip kernel → browser → peer → browser → kernel vs a bare custom-message echo
  plus a bare data-channel echo timed in the same page on the same call, the three interleaved
  trip by trip in one loop (goal: within 1.10×, p95 under 10 ms);
- server → kernel throughput, none lost, with the page's own arrival rate in the same run (the
  local server floods a call it has just set up, through its sideband); and page → kernel
  throughput with a sender that is not the bottleneck, the page pushing events through the
  call's receive path against the same bursts through a bare comm (goal: 5,000 events/s, near
  the floor);
- the same round trips with jupyter_server's stock Nagle behaviour (REALTIME_WIDGET_NODELAY=0),
  before/after the package's TCP_NODELAY extension.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import websockets
from tests.browser.page_server import PageServer
from tests.conftest import CHROMIUM_FLAGS, write_speech_wav
from tests.e2e.conftest import Lab, write_notebook
from tests.e2e.jupyter import JupyterServer

from server_process import KEY, serve
from stats import median, summary

# Figures that are inputs, not measurements (how many events were pushed): settings.
SETTINGS = {"throughput.events", "throughput.pushed_events"}

QUIET = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}

SETUP = """
import asyncio, json, time
import anywidget
from realtime_widget import RealtimeWidget

class Echo(anywidget.AnyWidget):
    _esm = {echo_esm!r}

w = RealtimeWidget(endpoint={url!r}, api_key={key!r}, turn_detection=None)
echo = Echo()
lw = RealtimeWidget(endpoint={url!r}, api_key={key!r}, model="gpt-live-1.1")
display(w, echo, lw)
"""

# The bare custom-message echo: the browser sends back whatever the kernel sends; asked with
# `{dc: i}`, it times a bare data-channel echo on the widget's call instead. Its page also keeps
# `window.__rtw_echo`, to push bursts of events to the kernel through a bare comm (the floor of
# the page → kernel throughput figure).
ECHO_ESM = """export default { initialize({ model }) {
  window.__rtw_echo = model;
  model.on("msg:custom", (m) => {
    if (m.dc === undefined) return model.send(m);
    // The data-channel echo, timed in the page on the widget's own call: the same event the
    // kernel's round trip sends, straight onto the channel and its answer straight off it.
    const channel = [...window.__rtw_calls][0].channel;
    const id = `evt_dc_${m.dc}`;
    const answered = (e) => {
      if (!String(e.data).includes(id)) return;
      channel.removeEventListener("message", answered);
      model.send({ dc_ms: performance.now() - t0 });
    };
    channel.addEventListener("message", answered);
    const t0 = performance.now();
    channel.send(JSON.stringify({ type: "conversation.item.retrieve", item_id: "item_missing",
                                  event_id: id }));
  });
} }"""

# Events pushed by the page, `size` per task, `bursts` tasks, yielding between them without
# timer clamping; `deliver(events)` is the path under test. The same pacing for both paths.
PUSH = """async ([bursts, size, path, round]) => {
  const tick = () => new Promise((r) => { const c = new MessageChannel();
                                          c.port1.onmessage = () => r(null);
                                          c.port2.postMessage(null); });
  const call = [...window.__rtw_calls][0];
  const echo = window.__rtw_echo;
  for (let i = 0; i < bursts; i++) {
    const events = [];
    for (let j = 0; j < size; j++) {
      events.push({ type: "response.output_audio_transcript.delta",
                    response_id: `resp_push_${round}`, item_id: "item_push", output_index: 0,
                    content_index: 0, delta: "w ", event_id: `evt_push_${round}_${i}_${j}` });
    }
    if (path === "widget") for (const e of events) call.record("in", e);
    else echo.send({ kind: "events",
                     events: events.map((e) => ({ dir: "in", t: Date.now(), event: e })) });
    await tick();
  }
}"""

FLOOR_COUNTER = """
_floor = []
def _count(_w, content, _b):
    _floor.append((time.time() * 1000, len(content.get("events", []))))
echo.on_msg(_count)
"""

# Both loops run as background tasks and the cell returns at once: the kernel is idle while
# events travel, as it is when a user talks, so every message takes the path it takes then
# (status busy/idle around each comm message included). Results land in a file.
ROUND_TRIPS = """
async def _bench(path, n):
    loop = asyncio.get_running_loop()
    out = {{"echo": [], "widget": [], "dc": []}}

    async def bare(content):
        fut = loop.create_future()
        def on_echo(_w, reply, _b):
            loop.call_soon_threadsafe(lambda: fut.done() or fut.set_result(reply))
        echo.on_msg(on_echo)
        t0 = time.perf_counter()
        echo.send(content)
        reply = await fut
        echo.on_msg(on_echo, remove=True)
        return (time.perf_counter() - t0) * 1000, reply

    async def comm(i):
        out["echo"].append((await bare({{"i": i}}))[0])

    async def widget(i):
        eid = f"evt_rt_{{i}}"
        reply = w.wait_for("error", where=lambda e: e["error"].get("event_id") == eid)
        t0 = time.perf_counter()
        w.send({{"type": "conversation.item.retrieve", "item_id": "item_missing", "event_id": eid}})
        await reply
        out["widget"].append((time.perf_counter() - t0) * 1000)

    async def dc(i):
        out["dc"].append((await bare({{"dc": i}}))[1]["dc_ms"])

    trips = [comm, widget, dc]
    for i in range(n):
        for trip in trips[i % 3:] + trips[:i % 3]:  # each goes first in turn: no order favoured
            await trip(i)
            await asyncio.sleep(0.01)
    open(path, "w").write(json.dumps(out))
_task = asyncio.ensure_future(_bench({path!r}, {n}))
"""


async def background(lab: Lab, template: str, n: int, timeout: float = 180) -> Any:
    """Run a benchmark loop as a kernel background task; its result comes through a file."""
    path = Path(tempfile.mkdtemp(prefix="rtw-bench-out-")) / "out.json"
    await lab.kernel(template.format(path=str(path), n=n))
    deadline = asyncio.get_running_loop().time() + timeout
    while not path.exists():  # polled from outside, so the kernel stays idle
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"benchmark loop did not finish: {template[:60]}")
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.05)  # the write is a single call; let it finish
    return json.loads(path.read_text())


GREET = """
def _greet(event):
    if event["type"] == "session.created":
        w.say("hello")
"""


async def connect_figures(lab: Lab, runs: int) -> dict[str, list[float]]:
    """Click Connect → data channel open, and click → the model's first audio (the kernel says
    "hello" when the session is created, as a scripted greeting would): the plain page's spans,
    from the same start (its key mint included, as the widget's is)."""
    await lab.kernel(GREET + "w.on('session.created', _greet)")
    connect, audio = [], []
    for _ in range(runs):
        await lab.page.locator(".rtw-connect", has_text="Connect").first.click()
        await lab.page.wait_for_function(
            "() => { const c = [...(window.__rtw_calls || [])][0];"
            " return c && c.timings.open !== undefined && c.timings.audio !== undefined; }",
            timeout=30_000,
        )
        t = await lab.page.evaluate("() => [...window.__rtw_calls][0].timings")
        connect.append(t["open"] - t["start"])
        audio.append(t["audio"] - t["start"])
        await lab.kernel("w.disconnect()")
        await lab.wait_kernel("w.status == 'closed'")
    await lab.kernel("w.off('session.created', _greet)")
    return {"connect": connect, "audio": audio}


LIVE_GREET = """
def _live_greet(event):
    lw.comment("hello")
"""


async def live_connect_figures(lab: Lab, runs: int) -> dict[str, list[float]]:
    """The GPT-Live widget's click → session.started (the call is up: commands may go) and
    click → first audio (the kernel has it say "hello" at session.started), and how long ICE
    gathering held the offer back; each run alternates with nothing else running."""
    await lab.kernel(LIVE_GREET + "lw.on('session.started', _live_greet)")
    connect, audio, gather = [], [], []
    for _ in range(runs):
        await lab.page.locator(".rtw-connect", has_text="Connect").nth(1).click()
        await lab.page.wait_for_function(
            "() => { const c = [...(window.__rtw_calls || [])][1];"
            " return c && c.timings.up !== undefined && c.timings.audio !== undefined; }",
            timeout=30_000,
        )
        t = await lab.page.evaluate("() => [...window.__rtw_calls][1].timings")
        connect.append(t["up"] - t["start"])
        audio.append(t["audio"] - t["start"])
        gather.append(t["offer"] - t["described"])
        await lab.kernel("lw.disconnect()")
        await lab.wait_kernel("lw.status == 'closed'")
    await lab.kernel("lw.off('session.started', _live_greet)")
    return {"connect": connect, "audio": audio, "gather": gather}


async def throughput(lab: Lab, base_url: str, count: int, floods: int) -> dict[str, float]:
    """The local server floods a call it has just set up, ``floods`` times, a new call each:
    one flood lasts a fraction of a second, so the figures are medians over them."""
    runs = [await flood(lab, base_url, count, tag) for tag in range(floods)]
    figures = {name: median([run[name] for run in runs]) for name in runs[0]}
    figures["throughput.events"] = sum(run["throughput.events"] for run in runs)
    figures["throughput.lost"] = sum(run["throughput.lost"] for run in runs)
    return figures


async def _drain(ws: Any) -> None:
    async for _ in ws:
        pass


async def flood(lab: Lab, base_url: str, count: int, tag: int) -> dict[str, float]:
    await lab.kernel("ready = w.wait_for('session.created'); w.connect(); await ready")
    call_id = (await lab.kernel("print(w.call_id)")).strip()
    url = base_url.replace("http", "ws") + f"/realtime?call_id={call_id}"
    # This flood's answers, by the ids it sent (the event log is a ring: earlier floods'
    # answers may be gone from it, this one's all fit).
    mine = (
        "[e for e in w.events.filter('error')"
        f" if (e.event['error'].get('event_id') or '').startswith('evt_{tag}_')]"
    )
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {KEY}"}) as ws:
        # The sideband gets every answer too: read them, as a sideband does, or the server's
        # writes to it back up and closing the socket waits out its 10 s close timeout.
        reading = asyncio.create_task(_drain(ws))
        for i in range(count):  # each is answered at once with an error event
            await ws.send(
                json.dumps(
                    {
                        "type": "conversation.item.retrieve",
                        "item_id": "item_missing",
                        "event_id": f"evt_{tag}_{i}",
                    }
                )
            )
        await lab.wait_kernel(f"len({mine}) >= {count}", timeout=60)
        reading.cancel()
    stats = json.loads(
        await lab.kernel(
            f"errs = {mine}\n"
            "print(json.dumps([len(errs), errs[0].t_kernel, errs[-1].t_kernel,"
            " errs[0].t_browser, errs[-1].t_browser,"
            " len({e.event['error']['event_id'] for e in errs})]))"
        )
    )
    received, first, last, page_first, page_last, distinct = stats
    await lab.kernel("w.disconnect()")
    await lab.wait_kernel("w.status == 'closed'")
    return {
        "throughput.events": float(received),
        "throughput.lost": float(count - distinct),
        "throughput.events_per_s": received / max((last - first) / 1000, 1e-6),
        # The same events' arrival in the page (its clock, same run): what the server and the
        # data channel deliver, the ceiling of what the page can pass on to the kernel.
        "throughput.page_arrivals_per_s": received / max((page_last - page_first) / 1000, 1e-6),
        "throughput.kernel_over_page_arrivals": (page_last - page_first) / max(last - first, 1e-6),
    }


async def page_push(lab: Lab, bursts: int, size: int, rounds: int) -> dict[str, float]:
    """Page → kernel throughput with a sender that is not the bottleneck: the page itself
    pushes events through the call's receive path, against the same bursts through a bare comm
    (the floor). A push lasts under a second, so one hiccup moves it a lot: the two are taken
    in turn, ``rounds`` times each, on the same connected call, each going first in turn."""
    count = bursts * size
    kind = "response.output_audio_transcript.delta"
    await lab.kernel(FLOOR_COUNTER)
    await lab.kernel("ready = w.wait_for('session.created'); w.connect(); await ready")

    async def floor(i: int) -> float:
        await lab.kernel("_floor.clear()")
        await lab.page.evaluate(PUSH, [bursts, size, "floor", i])
        await lab.wait_kernel(f"sum(n for _, n in _floor) >= {count}", timeout=120)
        first, last = json.loads(
            await lab.kernel("print(json.dumps([_floor[0][0], _floor[-1][0]]))")
        )
        return count / max((last - first) / 1000, 1e-6)

    async def widget(i: int) -> float:
        mine = (
            f"[e.t_kernel for e in w.events.filter({kind!r})"
            f" if e.event.get('response_id') == 'resp_push_{i}']"
        )
        await lab.page.evaluate(PUSH, [bursts, size, "widget", i])
        await lab.wait_kernel(f"len({mine}) >= {count}", timeout=120)
        first, last = json.loads(
            await lab.kernel(f"_pushed = {mine}\nprint(json.dumps([_pushed[0], _pushed[-1]]))")
        )
        return count / max((last - first) / 1000, 1e-6)

    rates: dict[str, list[float]] = {"floor": [], "widget": []}
    for i in range(rounds):
        order = [("floor", floor), ("widget", widget)]
        for name, push in order if i % 2 == 0 else order[::-1]:
            rates[name].append(await push(i))
    await lab.kernel("echo.on_msg(_count, remove=True)")
    await lab.kernel("w.disconnect()")
    await lab.wait_kernel("w.status == 'closed'")
    widget_rate, floor_rate = median(rates["widget"]), median(rates["floor"])
    paired = [w / f for w, f in zip(rates["widget"], rates["floor"], strict=True)]
    return {
        "throughput.pushed_events": float(count),
        "throughput.page_push_events_per_s": widget_rate,
        "throughput.page_push_floor_events_per_s": floor_rate,
        "throughput.page_push_over_floor": widget_rate / floor_rate,
        "throughput.page_push_over_floor_paired_median": median(paired),
    }


async def measure(nodelay: bool, quick: bool, base_url: str, browser: Any) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="rtw-bench-"))
    state = Path(tempfile.mkdtemp(prefix="rtw-bench-state-"))
    os.environ["REALTIME_WIDGET_NODELAY"] = "1" if nodelay else "0"
    jupyter = JupyterServer(root, state)
    jupyter.start()
    try:
        name = write_notebook(
            root, "bench.ipynb", [SETUP.format(url=base_url, key=KEY, echo_esm=ECHO_ESM)]
        )
        context = await browser.new_context(permissions=["microphone"])
        page = await context.new_page()
        lab = Lab(page, jupyter)
        await lab.open(name)
        await lab.run_all()
        await lab.wait_kernel("'echo' in globals()")
        await lab.page.locator(".rtw-connect").first.wait_for()
        n = 40 if quick else 200
        await lab.kernel("ready = w.wait_for('session.created'); w.connect(); await ready")
        result: dict[str, Any] = {"rtt": await background(lab, ROUND_TRIPS, n)}
        await lab.kernel("w.disconnect()")
        await lab.wait_kernel("w.status == 'closed'")
        if nodelay:
            result["connect"] = await connect_figures(lab, 8 if quick else 30)
            result["live"] = await live_connect_figures(lab, 8 if quick else 30)
            floods = (500, 3) if quick else (2000, 7)
            result["throughput"] = await throughput(lab, base_url, *floods)
            result["throughput"] |= await page_push(
                lab, 40 if quick else 200, 50, 3 if quick else 7
            )
        await context.close()
        return result
    finally:
        jupyter.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)


async def plain_page(base_url: str, browser: Any, connects: int, trips: int) -> dict[str, Any]:
    with PageServer(base_url, KEY, QUIET) as page_server:
        context = await browser.new_context(permissions=["microphone"])
        connect, audio, rtt = [], [], []
        for i in range(connects):
            page = await context.new_page()
            await page.goto(page_server.url)
            await page.evaluate("() => window.plain.connect(true)")
            await page.wait_for_function("() => window.plain.timings.audio !== undefined")
            t = await page.evaluate("() => window.plain.timings")
            connect.append(t["open"] - t["start"])
            audio.append(t["audio"] - t["start"])
            if i == 0:
                rtt = await page.evaluate(
                    """async (n) => { const out = [];
                        for (let i = 0; i < n; i++) out.push(await window.plain.roundTrip());
                        return out; }""",
                    trips,
                )
            await page.evaluate("() => window.plain.close()")
            await page.close()
        await context.close()
    return {"connect": connect, "audio": audio, "rtt": rtt}


async def run(quick: bool) -> dict[str, float]:
    from playwright.async_api import async_playwright

    wav = write_speech_wav(Path(tempfile.mkdtemp()) / "mic.wav")
    with serve() as (root, _):
        base_url = root + "/v1"
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={wav}"],
            )
            plain = await plain_page(base_url, browser, 8 if quick else 30, 40 if quick else 200)
            fast = await measure(True, quick, base_url, browser)
            slow = await measure(False, quick, base_url, browser)
            await browser.close()
    figures: dict[str, float] = {}
    # Both from the click (the key mint included) to the data channel open, and to first audio.
    figures |= summary("connect.plain_page", plain["connect"])
    figures |= summary("connect.widget", fast["connect"]["connect"])
    figures["connect.widget_over_plain"] = median(fast["connect"]["connect"]) / median(
        plain["connect"]
    )
    figures |= summary("first_audio.plain_page", plain["audio"])
    figures |= summary("first_audio.widget", fast["connect"]["audio"])
    figures["first_audio.widget_over_plain"] = median(fast["connect"]["audio"]) / median(
        plain["audio"]
    )
    # GPT-Live against Realtime, both widgets in the same page and run: click → the call is up
    # (session.started; the Realtime data channel open) and click → first audio.
    live = fast["live"]
    figures |= summary("connect.live", live["connect"])
    figures["connect.live_over_realtime"] = median(live["connect"]) / median(
        fast["connect"]["connect"]
    )
    figures |= summary("connect.live_ice_gathering", live["gather"])
    figures |= summary("first_audio.live", live["audio"])
    figures["first_audio.live_over_realtime"] = median(live["audio"]) / median(
        fast["connect"]["audio"]
    )
    # The round trip and its floor, interleaved trip by trip in one loop (a machine's swings
    # between runs move all three alike): comm echo + the page's own data-channel echo.
    rtt = fast["rtt"]
    figures |= summary("rtt.comm_echo", rtt["echo"])
    figures |= summary("rtt.dc_echo", rtt["dc"])
    figures |= summary("rtt.widget", rtt["widget"])
    figures["rtt.widget_over_baseline"] = median(rtt["widget"]) / (
        median(rtt["echo"]) + median(rtt["dc"])
    )
    paired = [w / (e + d) for w, e, d in zip(rtt["widget"], rtt["echo"], rtt["dc"], strict=True)]
    figures["rtt.widget_over_baseline_paired_median"] = median(paired)
    figures |= summary("rtt.dc_echo_plain_page", plain["rtt"])
    figures |= summary("rtt.comm_echo_stock_nagle", slow["rtt"]["echo"])
    figures |= summary("rtt.widget_stock_nagle", slow["rtt"]["widget"])
    figures["rtt.nodelay_speedup"] = median(slow["rtt"]["widget"]) / median(rtt["widget"])
    figures |= fast["throughput"]
    return figures


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(True)), indent=2))
