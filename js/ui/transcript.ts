// The transcript view: user and assistant turns with live deltas, tool calls, truncated turns,
// and each reply's latency and cost as the kernel measured them ("turn" messages).

import type { Call } from "../call";
import { h } from "./dom";
import { turnLine } from "./figures";

export function renderTranscript(el: HTMLElement, call: Call): () => void {
  const list = h("div", { className: "rtw-transcript", role: "log", ariaLive: "polite" });
  el.append(list);
  let frame: number | null = null;
  const draw = () => {
    frame = null;
    const stick = list.scrollHeight - list.scrollTop - list.clientHeight < 24;
    const turns = call.transcript.list;
    const figures = call.transcript.figures;
    // A response's figures go on its last item (after any tool calls, on the reply itself).
    const last = new Map<string, string>();
    for (const turn of turns) if (turn.responseId) last.set(turn.responseId, turn.id);
    list.replaceChildren(
      ...turns.map((turn) => {
        const meta = last.get(turn.responseId) === turn.id ? turnLine(figures.get(turn.responseId)) : "";
        return h(
          "div",
          { className: `rtw-turn rtw-${turn.role}${turn.done ? "" : " rtw-live"}${turn.truncated ? " rtw-truncated" : ""}` },
          h("span", { className: "rtw-role" }, turn.role),
          h("span", { className: "rtw-text" }, turn.text),
          ...(meta ? [h("span", { className: "rtw-turn-meta", title: "latency (speech or request to audio) · cost" }, meta)] : []),
        );
      }),
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
