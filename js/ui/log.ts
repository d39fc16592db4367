// The event log view: every event of the call in both directions, newest at the bottom, with
// time, direction and type; filtered by type and direction, searched; a row opens its JSON
// (with a copy button). Virtualized: rows have a fixed height and only the visible ones (plus a
// few) exist in the DOM, recycled as the list scrolls, so tens of thousands of events stay smooth.

import type { Call } from "../call";
import { type LogRow, rowJson, summarize } from "../eventlog";
import { h } from "./dom";

export const ROW_HEIGHT = 22; // px, kept in step with .rtw-log-row in widget.css
const OVERSCAN = 6;

const pad = (n: number, width = 2) => String(n).padStart(width, "0");
export function clock(t: number): string {
  const d = new Date(t);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** Copy text to the clipboard (the async API where allowed, else a selected textarea). */
export async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = h("textarea", { value: text });
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

interface RowElement extends HTMLDivElement {
  rtwSeq?: number;
  rtwCount?: number;
}

export function renderLog(el: HTMLElement, call: Call): () => void {
  const dir = h("select", { className: "rtw-select rtw-log-dir", title: "Direction" });
  dir.setAttribute("aria-label", "Direction");
  for (const [value, label] of [["", "both directions"], ["in", "↓ in (server)"], ["out", "↑ out (client)"]]) {
    dir.append(h("option", { value }, label));
  }
  const type = h("select", { className: "rtw-select rtw-log-type", title: "Event type" });
  type.setAttribute("aria-label", "Event type");
  const search = h("input", { className: "rtw-input rtw-log-search", type: "search", placeholder: "Search events…" });
  search.setAttribute("aria-label", "Search events");
  const count = h("span", { className: "rtw-log-count", role: "status" });
  const spacer = h("div", { className: "rtw-log-spacer" });
  const empty = h("div", { className: "rtw-log-empty" });
  const list = h("div", { className: "rtw-log-list", tabIndex: 0, role: "listbox" }, spacer, empty);
  list.setAttribute("aria-label", "Events, newest at the bottom");
  const title = h("span", { className: "rtw-log-detail-title" });
  const copy = h("button", { className: "rtw-button rtw-log-copy", type: "button" }, "Copy JSON");
  const close = h("button", { className: "rtw-button rtw-log-close", type: "button" }, "Close");
  const json = h("pre", { className: "rtw-log-json", tabIndex: 0 });
  const detail = h("div", { className: "rtw-log-detail", hidden: true }, h("div", { className: "rtw-log-detail-bar" }, title, copy, close), json);
  el.append(h("div", { className: "rtw-log-bar" }, dir, type, search, count), list, detail);

  let shown: LogRow[] = []; // the rows that pass the filters, oldest first
  let incoming: LogRow[] = []; // added since the last frame, not yet filtered
  let stick = true; // follow the newest event while scrolled to the bottom
  let selected: LogRow | null = null;
  let frame: number | null = null;
  let knownTypes = -1;
  let shownCount = 0; // records in the row the detail shows (a folded row grows)
  const pool: RowElement[] = [];

  const filters = () => ({ dir: dir.value, type: type.value, q: search.value.trim().toLowerCase() });
  let f = filters();
  const matches = (row: LogRow): boolean =>
    (!f.dir || row.dir === f.dir) &&
    (!f.type || row.type === f.type) &&
    (!f.q || `${row.type} ${row.text} ${JSON.stringify(rowJson(row))}`.toLowerCase().includes(f.q));

  const syncTypes = () => {
    if (call.log.types.size === knownTypes) return;
    knownTypes = call.log.types.size;
    const current = type.value;
    const names = [...call.log.types.keys()].sort();
    type.replaceChildren(h("option", { value: "" }, "all types"), ...names.map((name) => h("option", { value: name }, name)));
    type.value = names.includes(current) ? current : "";
  };

  const refilter = () => {
    f = filters();
    incoming = [];
    shown = call.log.list().filter(matches);
    stick = true;
    schedule();
  };

  const fill = (node: RowElement, row: LogRow) => {
    node.rtwSeq = row.seq;
    node.rtwCount = row.records.length;
    node.dataset.dir = row.dir;
    node.dataset.type = row.type;
    const n = row.records.length;
    const [time, arrow, kind, times, text] = node.children as unknown as HTMLElement[];
    time.textContent = clock(row.t);
    arrow.textContent = row.dir === "in" ? "↓" : "↑";
    arrow.title = row.dir === "in" ? "in: from the server" : "out: sent by the client";
    kind.textContent = row.type;
    times.textContent = n > 1 ? `×${n}` : "";
    text.textContent = summarize(row);
  };

  const rowElement = (): RowElement => {
    const node = h(
      "div",
      { className: "rtw-log-row", role: "option" },
      h("span", { className: "rtw-log-time" }),
      h("span", { className: "rtw-log-arrow" }),
      h("span", { className: "rtw-log-kind" }),
      h("span", { className: "rtw-log-times" }),
      h("span", { className: "rtw-log-text" }),
    ) as RowElement;
    list.append(node);
    return node;
  };

  const paint = () => {
    const height = list.clientHeight;
    const top = list.scrollTop;
    const start = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const end = Math.min(shown.length, Math.ceil((top + height) / ROW_HEIGHT) + OVERSCAN);
    while (pool.length < end - start) pool.push(rowElement());
    for (let i = 0; i < pool.length; i++) {
      const node = pool[i];
      const at = start + i;
      if (at >= end) {
        if (!node.hidden) {
          node.hidden = true;
          node.rtwSeq = undefined;
          delete node.dataset.type;
          delete node.dataset.dir;
        }
        continue;
      }
      const row = shown[at];
      node.hidden = false;
      node.style.transform = `translateY(${at * ROW_HEIGHT}px)`;
      if (node.rtwSeq !== row.seq || node.rtwCount !== row.records.length) fill(node, row);
      const on = row === selected;
      node.classList.toggle("rtw-selected", on);
      node.setAttribute("aria-selected", String(on));
    }
  };

  const draw = () => {
    frame = null;
    syncTypes();
    const first = call.log.firstSeq;
    let dropped = 0;
    while (dropped < shown.length && shown[dropped].seq < first) dropped++;
    if (dropped) shown.splice(0, dropped);
    for (const row of incoming) if (row.seq >= first && matches(row)) shown.push(row);
    incoming = [];
    if (selected && selected.seq < first) select(null);
    spacer.style.height = `${shown.length * ROW_HEIGHT}px`;
    empty.hidden = shown.length > 0;
    empty.textContent = call.log.size ? "No event matches these filters." : "No events yet: they appear here once the call starts.";
    const held = call.log.records;
    count.textContent =
      shown.length === call.log.size
        ? `${held.toLocaleString()} events in ${shown.length.toLocaleString()} rows`
        : `${shown.length.toLocaleString()} of ${call.log.size.toLocaleString()} rows`;
    if (list.clientHeight === 0) return; // hidden: drawn again when its tab is shown
    if (stick) list.scrollTop = list.scrollHeight;
    else if (dropped) list.scrollTop = Math.max(0, list.scrollTop - dropped * ROW_HEIGHT);
    paint();
    if (selected && !detail.hidden && selected.records.length !== shownCount) showDetail(selected);
  };

  function schedule(): void {
    if (frame === null) frame = requestAnimationFrame(draw);
  }

  function showDetail(row: LogRow): void {
    shownCount = row.records.length;
    const n = row.records.length;
    title.textContent = `${clock(row.t)} ${row.dir === "in" ? "↓ in" : "↑ out"} ${row.type}${n > 1 ? ` ×${n} (folded)` : ""}`;
    json.textContent = JSON.stringify(rowJson(row), null, 2);
    detail.hidden = false;
  }

  function select(row: LogRow | null, reveal = false): void {
    selected = row;
    if (row) showDetail(row);
    else detail.hidden = true;
    if (row && reveal) {
      const at = shown.indexOf(row);
      const top = at * ROW_HEIGHT;
      if (top < list.scrollTop) list.scrollTop = top;
      else if (top + ROW_HEIGHT > list.scrollTop + list.clientHeight) list.scrollTop = top + ROW_HEIGHT - list.clientHeight;
      stick = list.scrollHeight - list.scrollTop - list.clientHeight < ROW_HEIGHT;
    }
    paint();
  }

  list.addEventListener("scroll", () => {
    stick = list.scrollHeight - list.scrollTop - list.clientHeight < ROW_HEIGHT;
    schedule();
  });
  list.addEventListener("click", (e) => {
    const node = (e.target as HTMLElement).closest<RowElement>(".rtw-log-row");
    if (!node) return;
    const row = shown.find((r) => r.seq === node.rtwSeq) ?? null;
    select(row === selected ? null : row);
  });
  list.addEventListener("keydown", (e) => {
    if (shown.length === 0) return;
    const at = selected ? shown.indexOf(selected) : -1;
    let next = -2;
    if (e.key === "ArrowDown") next = Math.min(shown.length - 1, at + 1);
    else if (e.key === "ArrowUp") next = at < 0 ? shown.length - 1 : Math.max(0, at - 1);
    else if (e.key === "Home") next = 0;
    else if (e.key === "End") next = shown.length - 1;
    else if (e.key === "Escape" && selected) next = -1;
    if (next === -2) return;
    e.preventDefault();
    e.stopPropagation(); // the notebook must not take the arrows as cell navigation
    select(next >= 0 ? shown[next] : null, true);
  });
  copy.addEventListener("click", async () => {
    if (!selected) return;
    const ok = await copyText(JSON.stringify(rowJson(selected), null, 2));
    copy.textContent = ok ? "Copied" : "Copy failed";
    window.setTimeout(() => (copy.textContent = "Copy JSON"), 1200);
  });
  close.addEventListener("click", () => {
    select(null);
    list.focus();
  });
  let typing: number | null = null;
  search.addEventListener("input", () => {
    if (typing !== null) window.clearTimeout(typing);
    typing = window.setTimeout(refilter, 120); // searching 20,000 rows: once typing pauses
  });
  dir.addEventListener("change", refilter);
  type.addEventListener("change", refilter);

  const root = el.closest(".rtw-root") ?? el;
  const onTab = () => schedule();
  root.addEventListener("rtw-tab", onTab);
  const resize = new ResizeObserver(() => schedule());
  resize.observe(list);
  const off = call.log.on((change) => {
    if (change.added.length) incoming.push(...change.added);
    schedule();
  });
  refilter();
  return () => {
    off();
    resize.disconnect();
    root.removeEventListener("rtw-tab", onTab);
    if (frame !== null) cancelAnimationFrame(frame);
    if (typing !== null) window.clearTimeout(typing);
  };
}
