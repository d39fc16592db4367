// The transcript view: user and assistant turns with live deltas, tool calls, truncated turns,
// and each reply's latency and cost as the kernel measured them ("turn" messages).
//
// Each turn keeps its row: a draw touches only the rows whose text, state or figures changed
// and moves rows only when the order did, so a delta costs the same in the first minute of a
// session as in the hundredth (rebuilding every row made the frame cost grow with the talk).

import type { Call } from "../call";
import type { Turn } from "../transcript";
import { h } from "./dom";
import { turnLine } from "./figures";

interface Row {
  el: HTMLElement;
  text: HTMLElement;
  meta: HTMLElement;
  key: string; // what was drawn: class, text and figures
}

const META_TITLE = "latency (speech or request to audio) · cost";

export function renderTranscript(el: HTMLElement, call: Call): () => void {
  const list = h("div", { className: "rtw-transcript", role: "log", ariaLive: "polite" });
  const empty = h("div", { className: "rtw-empty" }, "The conversation appears here.");
  el.append(list);
  const rows = new Map<string, Row>();
  let order: HTMLElement[] = [];
  let frame: number | null = null;

  const rowOf = (turn: Turn): Row => {
    let row = rows.get(turn.id);
    if (!row) {
      const text = h("span", { className: "rtw-text" });
      const meta = h("span", { className: "rtw-turn-meta", title: META_TITLE });
      const rowEl = h("div", {}, h("span", { className: "rtw-role" }, turn.role), text, meta);
      rowEl.dataset.item = turn.id;
      row = { el: rowEl, text, meta, key: "" };
      rows.set(turn.id, row);
    }
    return row;
  };

  const draw = () => {
    frame = null;
    const stick = list.scrollHeight - list.scrollTop - list.clientHeight < 24;
    const turns = call.transcript.list;
    const figures = call.transcript.figures;
    // A response's figures go on its last item (after any tool calls, on the reply itself).
    const last = new Map<string, string>();
    for (const turn of turns) if (turn.responseId) last.set(turn.responseId, turn.id);
    const next: HTMLElement[] = [];
    const seen = new Set<string>();
    for (const turn of turns) {
      const row = rowOf(turn);
      seen.add(turn.id);
      const className = `rtw-turn rtw-${turn.role}${turn.done ? "" : " rtw-live"}${turn.truncated ? " rtw-truncated" : ""}`;
      const meta = last.get(turn.responseId) === turn.id ? turnLine(figures.get(turn.responseId)) : "";
      const key = `${className}\u0000${turn.text}\u0000${meta}`;
      if (key !== row.key) {
        row.key = key;
        row.el.className = className;
        row.text.textContent = turn.text;
        row.meta.textContent = meta;
        row.meta.hidden = meta === "";
      }
      next.push(row.el);
    }
    for (const id of [...rows.keys()]) if (!seen.has(id)) rows.delete(id); // deleted items
    const same = next.length === order.length && next.every((node, i) => node === order[i]);
    if (!same) {
      const appended = next.length > order.length && order.every((node, i) => node === next[i]);
      if (appended) list.append(...next.slice(order.length));
      else list.replaceChildren(...next);
      order = next;
    }
    if (turns.length === 0 && empty.parentNode !== list) list.append(empty);
    else if (turns.length > 0) empty.remove();
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
