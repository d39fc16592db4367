"""A room of learners in one Chromium page: each call its own peer connection to the server.

``bench.add(n)`` starts n calls at once, as the widget's page does (the microphone, a data channel
``oai-events``, the offer posted to ``/v1/realtime/calls`` with the server's key), and resolves
with each call's offer → data channel open time (``times``, ms), offer → answer received
(``answers``) and the calls that failed. ``bench.stats()``
sums the inbound audio statistics, ``bench.rtt(n)`` times events answered on the first call, and
``bench.close()`` hangs every call up.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from playwright.async_api import Page, async_playwright
from tests.conftest import CHROMIUM_FLAGS

from server_process import KEY

PAGE = """<!doctype html><title>capacity</title><script>
window.bench = { calls: [], mic: null };
bench.add = async (count) => {
  bench.mic ??= await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  });
  const one = async () => {
    const pc = new RTCPeerConnection();
    pc.addTrack(bench.mic.getAudioTracks()[0], bench.mic);
    const call = { pc, replies: 0, waiters: [] };
    pc.ontrack = (e) => {
      call.sink = new Audio();
      call.sink.srcObject = e.streams[0];
      call.sink.play().catch(() => undefined);
    };
    const channel = pc.createDataChannel("oai-events");
    call.channel = channel;
    channel.onmessage = (e) => {
      const type = JSON.parse(e.data).type;
      if (type === "output_audio_buffer.started") call.replies++;
      call.waiters = call.waiters.filter((w) => !w(type));
    };
    const opened = new Promise((resolve, reject) => {
      channel.onopen = resolve;
      setTimeout(() => reject(new Error("no data channel within 20 s")), 20000);
    });
    await pc.setLocalDescription(await pc.createOffer());
    const started = performance.now();
    const res = await fetch("/v1/realtime/calls", {
      method: "POST",
      body: pc.localDescription.sdp,
      headers: { Authorization: "Bearer KEY", "Content-Type": "application/sdp" },
    });
    if (!res.ok) throw new Error(`${res.status}: ${await res.text()}`);
    call.id = (res.headers.get("Location") || "").split("/").pop();
    const answer = await res.text();
    const answered = performance.now() - started;
    await pc.setRemoteDescription({ type: "answer", sdp: answer });
    await opened;
    bench.calls.push(call);
    return [performance.now() - started, answered];
  };
  // A call that does not come up counts as failed; the rest are measured.
  const tried = await Promise.allSettled(Array.from({ length: count }, one));
  return {
    times: tried.filter((t) => t.status === "fulfilled").map((t) => t.value[0]),
    answers: tried.filter((t) => t.status === "fulfilled").map((t) => t.value[1]),
    failed: tried.filter((t) => t.status === "rejected").map((t) => String(t.reason)),
  };
};
bench.stats = async () => {
  const out = { concealed: 0, samples: 0, lost: 0, packets: 0, replies: 0, open: 0 };
  for (const call of bench.calls) {
    out.replies += call.replies;
    if (call.channel.readyState === "open") out.open++;
    (await call.pc.getStats()).forEach((r) => {
      if (r.type !== "inbound-rtp" || r.kind !== "audio") return;
      out.concealed += r.concealedSamples || 0;
      out.samples += r.totalSamplesReceived || 0;
      out.lost += r.packetsLost || 0;
      out.packets += r.packetsReceived || 0;
    });
  }
  return out;
};
bench.rtt = async (trips) => {
  const call = bench.calls[0];
  const out = [];
  for (let i = 0; i < trips; i++) {
    const answered = new Promise((resolve) => {
      call.waiters.push((type) => (type === "error" ? (resolve(true), true) : false));
      setTimeout(() => resolve(false), 10000);
    });
    const t0 = performance.now();
    call.channel.send(JSON.stringify({ type: "conversation.item.retrieve", item_id: "item_x" }));
    if (!(await answered)) break; // no answer within 10 s: the server's loop is stalled
    out.push(performance.now() - t0);
  }
  return out;
};
bench.close = () => {
  bench.calls.forEach((c) => c.pc.close());
  bench.calls = [];
};
</script>""".replace("KEY", KEY)


@contextlib.asynccontextmanager
async def open_room(url: str, microphone: Path | None = None) -> AsyncIterator[Page]:
    """The room's page, served at the server's own origin (no CORS in the measure);
    ``microphone``: a WAV file the fake microphone plays in a loop (else Chromium's beeps)."""
    args = list(CHROMIUM_FLAGS)
    if microphone is not None:
        args.append(f"--use-file-for-fake-audio-capture={microphone}")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        try:
            context = await browser.new_context(permissions=["microphone"])
            page = await context.new_page()
            await page.route(
                f"{url}/room", lambda route: route.fulfill(body=PAGE, content_type="text/html")
            )
            await page.goto(f"{url}/room")
            yield page
            await page.evaluate("() => bench.close()")
        finally:
            await browser.close()


def chromium_cpu_seconds() -> float:
    """User + system CPU of every Chromium process now running (the room's browser, its
    renderer, network and audio services), from ``/proc``."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if "chrom" not in (entry / "comm").read_text():
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total
