"""Load in one notebook: three widgets, three calls at once, each with its own words, its own
reply in its own view and its own kernel transcript; then all of them hang up and the page holds
no microphone and no open peer connection."""

from __future__ import annotations

from pathlib import Path

from .conftest import Lab, write_notebook
from .test_widget_lab import QUIET, click_connect, widget_cell

WIDGETS = 3
NAMES = [f"w{i}" for i in range(WIDGETS)]
WORDS = ["the apple is red", "the sea is blue", "the grass is green"]


async def test_three_widgets_hold_three_calls_without_crossing(lab: Lab, workdir: Path) -> None:
    cells = [widget_cell(QUIET, name=name) for name in NAMES]
    notebook = write_notebook(workdir, "load.ipynb", cells)
    await lab.open(notebook)
    await lab.run_all()
    await lab.page.locator(".rtw-root").nth(WIDGETS - 1).wait_for()
    # Connect all three before waiting for any: the calls come up together.
    for index in range(WIDGETS):
        await click_connect(lab, index)
    await lab.wait_kernel(" and ".join(f"{n}.status == 'connected'" for n in NAMES))
    call_ids = await lab.kernel_json(f"[{', '.join(f'{n}.call_id' for n in NAMES)}]")
    assert len(set(call_ids)) == WIDGETS and all(c.startswith("rtc_") for c in call_ids)

    # The page holds one call per widget, with the same ids: keep its tracks and peer
    # connections, to check after the hang-ups that each was ended and closed.
    in_page = await lab.page.evaluate(
        """() => {
            window.__rtw_load = [...window.__rtw_calls].map((c) => ({
                id: c.state.callId, track: c.micTrack, pc: c.pc }));
            return window.__rtw_load.map((c) => [c.id, c.track?.readyState ?? null,
                                                 c.pc?.connectionState ?? null]);
        }"""
    )
    assert sorted(c[0] for c in in_page) == sorted(call_ids)
    assert all(c[1] == "live" and c[2] == "connected" for c in in_page), in_page

    # All three speak at once; each reply lands in its own widget.
    await lab.kernel("\n".join(f"{n}.say({w!r})" for n, w in zip(NAMES, WORDS, strict=True)))
    await lab.wait_kernel(
        " and ".join(
            f"any(t.text == 'You said: {w}' for t in {n}.transcript)"
            for n, w in zip(NAMES, WORDS, strict=True)
        )
    )
    transcripts = await lab.kernel_json(
        f"[[[t.role, t.text] for t in n.transcript] for n in ({', '.join(NAMES)})]"
    )
    for words, transcript in zip(WORDS, transcripts, strict=True):
        assert transcript == [["user", words], ["assistant", f"You said: {words}"]]
    # Each kernel log holds its own call's events only.
    logged = await lab.kernel_json(
        "[[r.event['transcript'] for r in n.events.filter('response.output_audio_transcript.done')]"
        f" for n in ({', '.join(NAMES)})]"
    )
    assert logged == [[f"You said: {w}"] for w in WORDS]

    # Each view shows its own reply and no other.
    for index, words in enumerate(WORDS):
        view = lab.page.locator(".rtw-root").nth(index)
        await view.locator(".rtw-assistant", has_text=f"You said: {words}").wait_for()
        shown = await view.locator(".rtw-assistant").all_inner_texts()
        assert len(shown) == 1, shown
        others = [w for w in WORDS if w != words and any(w in s for s in shown)]
        assert not others, f"view {index} shows {others}"

    # All hang up together; every microphone is released and every peer connection closed.
    await lab.kernel("\n".join(f"{n}.disconnect()" for n in NAMES))
    await lab.wait_kernel(" and ".join(f"{n}.status == 'closed'" for n in NAMES))
    await lab.page.wait_for_function(
        """() => window.__rtw_load.every((c) => c.track.readyState === 'ended'
                                                && c.pc.connectionState === 'closed')
                 && [...window.__rtw_calls].every((c) => c.micTrack === null)""",
        timeout=30_000,
    )
    assert await lab.page.locator("audio[data-rtw]").count() == 0
