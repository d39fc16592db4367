// The transcript view: user and assistant turns with live deltas, images as thumbnails, failed
// transcriptions, tool and MCP calls, approval requests with their buttons, truncated turns, and
// each reply's latency and cost as the kernel measured them ("turn" messages).
//
// Virtualised, as the log is, but rows wrap, so their heights are measured: only the rows in
// view (and some above and below) are in the DOM, between two spacers whose heights stand for
// the rest (measured heights, or the average of those for rows never drawn). An hour-long call
// keeps a flat DOM and a flat draw time. Following the newest turn is the usual case: while the
// view is scrolled to the bottom it stays there.

import type { Call } from "../call";
import type { Turn } from "../transcript";
import { h } from "./dom";
import { turnLine } from "./figures";

interface Row {
  el: HTMLElement;
  text: HTMLElement;
  images: HTMLElement;
  actions: HTMLElement;
  meta: HTMLElement;
  key: string; // what was drawn: version, class and figures
}

const META_TITLE = "latency (speech or request to audio) · cost";
const OVERSCAN_PX = 600; // drawn beyond the view, so a scroll shows rows at once
const ESTIMATE_PX = 44; // a row never measured, before any is
const GAP_PX = 4; // between rows (.rtw-transcript-rows' gap), counted in each row's height

export function renderTranscript(el: HTMLElement, call: Call): () => void {
  const above = h("div", { className: "rtw-transcript-spacer" });
  const body = h("div", { className: "rtw-transcript-rows" });
  const below = h("div", { className: "rtw-transcript-spacer" });
  const empty = h("div", { className: "rtw-empty" }, "The conversation appears here.");
  const list = h("div", { className: "rtw-transcript", role: "log", ariaLive: "polite" }, above, body, below);
  el.append(list);
  const rows = new Map<string, Row>(); // the rows in the DOM, by item id
  let heights = new Map<string, number>(); // measured, by item id
  let measuredTotal = 0;
  let drawn: HTMLElement[] = [];
  let frame: number | null = null;
  let stick = true; // follow the newest turn
  let remeasure = 0; // draws in a row that only corrected heights

  const approve = (id: string, yes: boolean, buttons: HTMLButtonElement[]) => {
    for (const b of buttons) b.disabled = true;
    void call.approve(id, yes).catch((error: Error) => {
      for (const b of buttons) b.disabled = false;
      const row = rows.get(id);
      if (row) row.meta.textContent = error.message;
    });
  };

  const rowOf = (turn: Turn): Row => {
    let row = rows.get(turn.id);
    if (!row) {
      const text = h("span", { className: "rtw-text" });
      const images = h("span", { className: "rtw-images" });
      const actions = h("span", { className: "rtw-turn-actions" });
      const meta = h("span", { className: "rtw-turn-meta", title: META_TITLE });
      const rowEl = h("div", {}, h("span", { className: "rtw-role" }, turn.role), images, text, actions, meta);
      rowEl.dataset.item = turn.id;
      row = { el: rowEl, text, images, actions, meta, key: "" };
      rows.set(turn.id, row);
    }
    return row;
  };

  const play = (id: string, button: HTMLButtonElement) => {
    button.disabled = true;
    call.playTurn(id).then(
      (player) => {
        button.classList.add("rtw-playing");
        player.addEventListener("ended", () => button.classList.remove("rtw-playing"), { once: true });
        button.disabled = false;
      },
      (error: Error) => {
        button.disabled = false;
        const row = rows.get(id);
        if (row) {
          row.meta.textContent = error.message;
          row.meta.hidden = false;
        }
      },
    );
  };

  const fill = (row: Row, turn: Turn, meta: string) => {
    const className = `rtw-turn rtw-${turn.role} rtw-kind-${turn.kind}${turn.done ? "" : " rtw-live"}${turn.truncated ? " rtw-truncated" : ""}${turn.failed ? " rtw-failed" : ""}`;
    // A recorded call's spoken turns play from here (the kernel holds the recording).
    const playable = turn.audio && call.recorded && turn.role !== "tool";
    const key = `${turn.version}\u0000${className}\u0000${meta}\u0000${playable}`;
    if (key === row.key) return;
    row.key = key;
    row.el.className = className;
    row.text.textContent = turn.text;
    row.meta.textContent = meta;
    row.meta.hidden = meta === "";
    if (row.images.childElementCount !== turn.images.length) {
      row.images.replaceChildren(...turn.images.map((src) => h("img", { className: "rtw-thumb", src, alt: "an image sent as a turn" })));
    }
    const approval = turn.approval;
    if (approval && approval.answered === null) {
      if (!row.actions.childElementCount) {
        const yes = h("button", { className: "rtw-button rtw-approve", type: "button" }, "Approve");
        const no = h("button", { className: "rtw-button rtw-deny", type: "button" }, "Deny");
        yes.addEventListener("click", () => approve(approval.id, true, [yes, no]));
        no.addEventListener("click", () => approve(approval.id, false, [yes, no]));
        row.actions.replaceChildren(yes, no);
      }
    } else if (approval) {
      row.actions.replaceChildren(h("span", { className: "rtw-verdict" }, approval.answered ? "approved" : "denied"));
    } else if (playable) {
      if (!row.actions.querySelector(".rtw-play-turn")) {
        const button = h("button", { className: "rtw-button rtw-play-turn", type: "button", title: "Play this turn as recorded" }, "▶");
        button.setAttribute("aria-label", `Play the ${turn.role}'s turn as recorded`);
        button.addEventListener("click", () => play(turn.id, button));
        row.actions.replaceChildren(button);
      }
    } else {
      row.actions.replaceChildren();
    }
  };

  // Where each turn starts: the measured heights above it summed, plus the average height for
  // those never measured (so a new average moves no sums). Rebuilt when the list's membership
  // changes (a turn added or deleted), redone from the first row whose height changed: a delta
  // costs what is drawn, not the length of the call.
  let laid: Turn[] = [];
  let measuredAbove = new Float64Array(1);
  let guessedAbove = new Uint32Array(1);
  let sumsFrom = 0; // the sums are right up to this index
  const lay = (turns: Turn[]) => {
    if (turns !== laid) {
      laid = turns;
      measuredAbove = new Float64Array(turns.length + 1);
      guessedAbove = new Uint32Array(turns.length + 1);
      sumsFrom = 0;
      const kept = new Map<string, number>(); // deleted items' heights go
      measuredTotal = 0;
      for (const turn of turns) {
        const height = heights.get(turn.id);
        if (height === undefined) continue;
        kept.set(turn.id, height);
        measuredTotal += height;
      }
      heights = kept;
    }
    for (let i = sumsFrom; i < turns.length; i++) {
      const height = heights.get(turns[i].id);
      measuredAbove[i + 1] = measuredAbove[i] + (height ?? 0);
      guessedAbove[i + 1] = guessedAbove[i] + (height === undefined ? 1 : 0);
    }
    sumsFrom = turns.length;
  };
  const startOf = (i: number, guess: number) => measuredAbove[i] + guessedAbove[i] * guess;
  // The first index in [lo, n] whose start is at or below y (starts never decrease).
  const firstStartingAt = (y: number, lo: number, n: number, guess: number) => {
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (startOf(mid, guess) < y) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };

  const draw = () => {
    frame = null;
    const turns = call.transcript.list;
    lay(turns);
    const guess = heights.size ? measuredTotal / heights.size : ESTIMATE_PX;
    const total = startOf(turns.length, guess);
    const view = list.clientHeight || 320;
    const top = stick ? Math.max(0, total - view) : list.scrollTop;
    // The rows from the one that ends below the overscan's top to the one that starts past
    // its bottom.
    const first = Math.max(0, firstStartingAt(top - OVERSCAN_PX, 0, turns.length, guess) - 1);
    const last = firstStartingAt(top + view + OVERSCAN_PX, first, turns.length, guess);
    const next: HTMLElement[] = [];
    const keep = new Set<string>();
    for (let i = first; i < last; i++) {
      const turn = turns[i];
      const row = rowOf(turn);
      keep.add(turn.id);
      // A response's figures go on its last item (after any tool calls, on the reply itself).
      const meta = call.transcript.isLastOfResponse(turn) ? turnLine(call.transcript.figures.get(turn.responseId)) : "";
      fill(row, turn, meta);
      next.push(row.el);
    }
    for (const id of [...rows.keys()]) if (!keep.has(id)) rows.delete(id); // scrolled away, deleted
    const same = next.length === drawn.length && next.every((node, i) => node === drawn[i]);
    if (!same) {
      const appended = next.length > drawn.length && drawn.every((node, i) => node === next[i]);
      if (appended) body.append(...next.slice(drawn.length));
      else body.replaceChildren(...next);
      drawn = next;
    }
    above.style.height = `${startOf(first, guess)}px`;
    below.style.height = `${total - startOf(last, guess)}px`;
    // Measure what is drawn; if guesses were off, the spacers are redrawn once more.
    let off = false;
    for (let i = first; i < last; i++) {
      const id = turns[i].id;
      const measured = rows.get(id)!.el.offsetHeight + GAP_PX;
      const known = heights.get(id);
      if (known !== measured && measured > GAP_PX) {
        measuredTotal += measured - (known ?? 0);
        heights.set(id, measured);
        sumsFrom = Math.min(sumsFrom, i);
        off = true;
      }
    }
    if (turns.length === 0 && empty.parentNode !== body) body.append(empty);
    else if (turns.length > 0) empty.remove();
    if (stick) list.scrollTop = list.scrollHeight;
    remeasure = off ? remeasure + 1 : 0;
    if (off && remeasure < 3) schedule();
  };
  // Deltas come in bursts: draw at most once a frame.
  // A view not rendered (a hidden tab, a collapsed output) draws nothing and catches up when
  // shown. Scrolled out of sight it still draws: the list is a live region for screen readers.
  let rendered = true; // until the observer says otherwise
  let missed = false;
  const schedule = () => {
    if (!rendered) missed = true;
    else if (frame === null) frame = requestAnimationFrame(draw);
  };
  const sized = new ResizeObserver((entries) => {
    const box = entries[entries.length - 1]?.contentRect;
    rendered = box !== undefined && (box.width > 0 || box.height > 0);
    if (rendered && missed) {
      missed = false;
      schedule();
    }
  });
  sized.observe(list);
  const onScroll = () => {
    stick = list.scrollHeight - list.scrollTop - list.clientHeight < 24;
    schedule();
  };
  list.addEventListener("scroll", onScroll, { passive: true });
  draw();
  const off = call.on("transcript", schedule);
  return () => {
    off();
    sized.disconnect();
    list.removeEventListener("scroll", onScroll);
    if (frame !== null) cancelAnimationFrame(frame);
  };
}
