// The transcript view: user and assistant turns with live deltas, tool calls, truncated turns.

import type { Call } from "../call";
import { h } from "./dom";

export function renderTranscript(el: HTMLElement, call: Call): () => void {
  const list = h("div", { className: "rtw-transcript", role: "log", ariaLive: "polite" });
  el.append(list);
  let frame: number | null = null;
  const draw = () => {
    frame = null;
    const stick = list.scrollHeight - list.scrollTop - list.clientHeight < 24;
    const turns = call.transcript.list;
    list.replaceChildren(
      ...turns.map((turn) =>
        h(
          "div",
          { className: `rtw-turn rtw-${turn.role}${turn.done ? "" : " rtw-live"}${turn.truncated ? " rtw-truncated" : ""}` },
          h("span", { className: "rtw-role" }, turn.role),
          h("span", { className: "rtw-text" }, turn.text),
        ),
      ),
    );
    if (turns.length === 0) list.append(h("div", { className: "rtw-empty" }, "The conversation appears here."));
    if (stick) list.scrollTop = list.scrollHeight;
  };
  // Deltas come in bursts: draw at most once a frame.
  const schedule = () => {
    if (frame === null) frame = requestAnimationFrame(draw);
  };
  draw();
  const off = call.on("transcript", schedule);
  return () => {
    off();
    if (frame !== null) cancelAnimationFrame(frame);
  };
}
