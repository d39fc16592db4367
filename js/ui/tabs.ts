// Tabs: the default view stays small (controls + transcript); the other panels are a click (or
// an arrow key) away. A panel is drawn the first time it is shown and kept after that.

import { h } from "./dom";

export interface TabSpec {
  id: string;
  label: string;
  render: (panel: HTMLElement) => () => void;
}

let nextView = 1;

export function renderTabs(el: HTMLElement, specs: TabSpec[], initial: string): () => void {
  const view = nextView++;
  const list = h("div", { className: "rtw-tabs", role: "tablist" });
  list.setAttribute("aria-label", "Widget panels");
  const body = h("div", { className: "rtw-panels" });
  const cleanups: (() => void)[] = [];
  const tabs = specs.map((spec) => {
    const tab = h("button", { className: "rtw-tab", type: "button", role: "tab", id: `rtw-tab-${view}-${spec.id}` }, spec.label);
    const panel = h("div", { className: `rtw-panel rtw-panel-${spec.id}`, role: "tabpanel", id: `rtw-panel-${view}-${spec.id}` });
    tab.dataset.tab = spec.id;
    tab.setAttribute("aria-controls", panel.id);
    panel.setAttribute("aria-labelledby", tab.id);
    panel.hidden = true;
    list.append(tab);
    body.append(panel);
    return { spec, tab, panel, drawn: false };
  });
  const select = (id: string, focus = false) => {
    for (const t of tabs) {
      const on = t.spec.id === id;
      t.tab.setAttribute("aria-selected", String(on));
      t.tab.tabIndex = on ? 0 : -1;
      t.panel.hidden = !on;
      if (on && !t.drawn) {
        t.drawn = true;
        cleanups.push(t.spec.render(t.panel));
      }
      if (on && focus) t.tab.focus();
    }
    el.dataset.tab = id;
    // Panels that size themselves (the virtualized log) redraw when they become visible.
    el.dispatchEvent(new CustomEvent("rtw-tab", { detail: id }));
  };
  list.addEventListener("click", (e) => {
    const tab = (e.target as HTMLElement).closest<HTMLElement>(".rtw-tab");
    if (tab?.dataset.tab) select(tab.dataset.tab);
  });
  list.addEventListener("keydown", (e) => {
    const at = tabs.findIndex((t) => t.tab === document.activeElement);
    if (at < 0) return;
    let next = -1;
    if (e.key === "ArrowRight") next = (at + 1) % tabs.length;
    else if (e.key === "ArrowLeft") next = (at - 1 + tabs.length) % tabs.length;
    else if (e.key === "Home") next = 0;
    else if (e.key === "End") next = tabs.length - 1;
    if (next < 0) return;
    e.preventDefault();
    select(tabs[next].spec.id, true);
  });
  el.append(list, body);
  select(initial);
  return () => {
    for (const cleanup of cleanups) cleanup();
  };
}
