// Controls: connect/disconnect, mute, the status line (with the error and what to do).

import type { AnyModel } from "@anywidget/types";
import type { Call, CallState } from "../call";
import { h } from "./dom";
import { type Totals, totalsLine } from "./figures";

const LABELS: Record<CallState["status"], string> = {
  idle: "Not connected",
  connecting: "Connecting…",
  connected: "Connected",
  closed: "Call ended",
  error: "Error",
};

export function renderControls(el: HTMLElement, model: AnyModel, call: Call): () => void {
  const connect = h("button", { className: "rtw-button rtw-connect", type: "button" });
  const mute = h("button", { className: "rtw-button rtw-mute", type: "button" });
  const interrupt = h("button", { className: "rtw-button rtw-interrupt", type: "button" }, "Interrupt");
  interrupt.title = "Stop the model: cancel its response and clear the audio queued to play";
  const dot = h("span", { className: "rtw-dot" });
  const label = h("span", { className: "rtw-status-label" });
  const status = h("span", { className: "rtw-status", role: "status" }, dot, label);
  const endpoint = h("span", { className: "rtw-endpoint" });
  const error = h("div", { className: "rtw-error", role: "alert" });
  const notices = h("div", { className: "rtw-notices" });
  const micNotice = h("div", { className: "rtw-mic-notice", role: "status" });
  // Server VAD heard the user start (speech_started) and not yet stop: say so, as a call app does.
  const speaking = h("span", { className: "rtw-speaking", hidden: true }, "● speaking");
  speaking.title = "The server hears you (input_audio_buffer.speech_started)";
  const totals = h("span", { className: "rtw-totals", title: "session totals (measured by the kernel)" });
  el.append(
    h("div", { className: "rtw-controls" }, connect, mute, interrupt, status, speaking, endpoint, totals),
    error,
    micNotice,
    notices,
  );

  connect.addEventListener("click", () => {
    const busy = call.state.status === "connecting" || call.state.status === "connected";
    if (busy) call.stop();
    else void call.start();
  });
  mute.addEventListener("click", () => call.setMuted(!call.state.muted));
  interrupt.addEventListener("click", () => call.interrupt());

  const draw = (state: CallState) => {
    const busy = state.status === "connecting" || state.status === "connected";
    connect.textContent = busy ? "Disconnect" : "Connect";
    connect.setAttribute("aria-pressed", String(busy));
    mute.textContent = state.muted ? "Unmute" : "Mute";
    mute.disabled = state.status !== "connected" || state.micError !== null;
    mute.setAttribute("aria-pressed", String(state.muted));
    interrupt.disabled = !call.answering; // nothing to stop: the server would refuse the cancel
    interrupt.hidden = call.live; // GPT-Live has no response to cancel: it stops when talked over
    el.dataset.status = state.status;
    if (state.status !== "connected") speaking.hidden = true;
    label.textContent = LABELS[state.status] + (state.callId ? ` · ${state.callId}` : "");
    error.textContent = state.error ? (state.step ? `[${state.step}] ` : "") + state.error : "";
    error.hidden = !state.error;
    const textOnly = state.micError !== null && (state.status === "connecting" || state.status === "connected");
    micNotice.textContent = textOnly ? `Text only, no microphone. ${state.micError} Text still works: w.say("…") from Python, or the Compose tab.` : "";
    micNotice.hidden = !textOnly;
  };
  const drawModel = () => {
    endpoint.textContent = String(model.get("endpoint_label") ?? "");
    totals.textContent = totalsLine(model.get("totals") as Totals | undefined);
    totals.hidden = totals.textContent === "";
    const list = (model.get("notices") as string[] | undefined) ?? [];
    notices.replaceChildren(...list.map((text) => h("div", { className: "rtw-notice" }, text)));
  };
  draw(call.state);
  drawModel();
  const off = call.on("state", draw);
  const ANSWERING = new Set(["response.created", "response.done", "output_audio_buffer.started", "output_audio_buffer.stopped", "output_audio_buffer.cleared"]);
  const SPEECH_ENDS = new Set(["input_audio_buffer.speech_stopped", "input_audio_buffer.cleared", "input_audio_buffer.timeout_triggered"]);
  const offAnswering = call.on("event", (record) => {
    if (record.dir !== "in") return;
    const type = record.event.type;
    if (ANSWERING.has(type)) interrupt.disabled = !call.answering;
    if (type === "input_audio_buffer.speech_started") speaking.hidden = false;
    else if (SPEECH_ENDS.has(type)) speaking.hidden = true;
  });
  model.on("change:notices", drawModel);
  model.on("change:endpoint_label", drawModel);
  model.on("change:totals", drawModel);
  return () => {
    model.off("change:totals", drawModel);
    off();
    offAnswering();
    model.off("change:notices", drawModel);
    model.off("change:endpoint_label", drawModel);
  };
}
