// The anywidget entry: `initialize` makes the one Call (and Bridge) of a widget model; `render`
// draws a view of it. Two views of one widget share one call.

import type { AnyModel, Initialize, Render } from "@anywidget/types";
import { Bridge } from "./bridge";
import { Call } from "./call";
import { renderAudio } from "./ui/audio";
import { renderComposer } from "./ui/composer";
import { renderControls } from "./ui/controls";
import { h } from "./ui/dom";
import { renderLog } from "./ui/log";
import { renderSession } from "./ui/session";
import { renderTabs } from "./ui/tabs";
import { renderTranscript } from "./ui/transcript";

// anywidget hands initialize and each render a different proxy of the same model, so the call
// is found by the widget's own id (a synced trait set once in Python), not by object identity.
// Hosts that pass the same model object to both (and test pages) are matched by identity first.
const calls = new Map<string, Call>();
const byModel = new WeakMap<AnyModel, Call>();
const keyOf = (model: AnyModel): string => String(model.get("_call_key") ?? "");
const findCall = (model: AnyModel): Call | undefined =>
  byModel.get(model) ?? (keyOf(model) ? calls.get(keyOf(model)) : undefined);

const initialize: Initialize = ({ model }) => {
  const bridge = new Bridge(model);
  const call = new Call(model, bridge);
  byModel.set(model, call);
  const key = keyOf(model);
  if (key) calls.set(key, call);
  const off = bridge.onMessage((msg) => {
    if (msg.kind === "connect") void call.start();
    else if (msg.kind === "disconnect") call.stop();
    else if (msg.kind === "mute") call.setMuted(msg.muted);
    else if (msg.kind === "send") call.send(msg.events);
    else if (msg.kind === "turn") call.turnFigures(msg.figures);
    else if (msg.kind === "ping") call.answerPing();
    else if (msg.kind === "replay") call.replay(msg.events);
    else if (msg.kind === "play") void call.play(msg.id, msg.pcm);
  });
  // A page loaded this widget: if the kernel thinks a call is live, it pings, and only the page
  // that really holds the call answers (after a reload, none does and the kernel ends it).
  bridge.post({ kind: "hello" });
  // ipywidgets flags the comm on a kernel restart or a lost connection.
  const onCommLive = () => call.checkKernel();
  model.on("comm_live_update", onCommLive);
  // Closing the widget (or the kernel going away) ends the call and frees the microphone.
  return () => {
    off();
    model.off("comm_live_update", onCommLive);
    call.dispose();
    bridge.dispose();
    byModel.delete(model);
    if (key && calls.get(key) === call) calls.delete(key);
  };
};

const render: Render = ({ model, el }) => {
  const call = findCall(model);
  const root = h("div", { className: "rtw-root" });
  // Keys typed in the widget are the widget's: JupyterLab's notebook shortcuts (a, b, d d, arrows,
  // Ctrl+Enter) must not fire while a select, the log or the composer has the focus.
  root.dataset.lmSuppressShortcuts = "true";
  el.append(root);
  if (!call) {
    root.textContent = "realtime-widget: this view has no call (the widget was closed).";
    return;
  }
  // The default view stays small (controls + transcript); the rest is a tab away.
  const cleanups = [
    renderControls(root, model, call),
    renderTabs(
      root,
      [
        { id: "transcript", label: "Transcript", render: (panel) => renderTranscript(panel, call) },
        { id: "log", label: "Log", render: (panel) => renderLog(panel, call) },
        { id: "session", label: "Session", render: (panel) => renderSession(panel, call, model) },
        { id: "audio", label: "Audio", render: (panel) => renderAudio(panel, call) },
        { id: "compose", label: "Compose", render: (panel) => renderComposer(panel, call) },
      ],
      "transcript",
    ),
  ];
  return () => {
    for (const cleanup of cleanups) cleanup();
    root.remove();
  };
};

export default { initialize, render };
