// The Session panel: model, voice, reasoning effort, parallel tool calls, instructions, output
// modalities, input transcription and the rate limits, as the server reports them
// (session.created / session.updated, rate_limits.updated) during a call, and as the synced
// `session` trait holds them (the config the next call starts with) outside one. Changes are
// session.update events the kernel checks and sends (as widget.update_session would), or, outside
// a call, the next call's config. Known models and voices come from the kernel's schema (its
// `openai` types) as suggestions; any name may be typed. The voice is fixed once the model has
// spoken, and the panel says so instead of sending an update the API would refuse.

import type { AnyModel } from "@anywidget/types";
import type { Call } from "../call";
import type { EventRecord } from "../protocol";
import { newEventId } from "./composer";
import { h } from "./dom";
const TRANSCRIBE_MODEL = "gpt-4o-mini-transcribe";

const obj = (value: unknown): Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};

export function renderSession(el: HTMLElement, call: Call, widget: AnyModel): () => void {
  const models = h("datalist", { id: `rtw-models-${Math.random().toString(36).slice(2)}` });
  const model = h("input", { className: "rtw-input rtw-session-model", type: "text", spellcheck: false });
  model.setAttribute("list", models.id);
  model.setAttribute("aria-label", "Model");
  const modelNote = h("span", { className: "rtw-session-note rtw-session-model-note" });
  const source = h("span", { className: "rtw-session-note rtw-session-source" });
  const voice = h("select", { className: "rtw-select rtw-session-voice" });
  voice.setAttribute("aria-label", "Voice");
  // No voice in the config: the server picks its default (marin on OpenAI).
  voice.append(h("option", { value: "", disabled: true }, "(the server's default)"));
  let voices: string[] = [];
  const effort = h("select", { className: "rtw-select rtw-session-effort" });
  effort.setAttribute("aria-label", "Reasoning effort");
  effort.append(h("option", { value: "" }, "(the model's default)"));
  const parallel = h("input", { type: "checkbox", className: "rtw-session-parallel" });
  parallel.setAttribute("aria-label", "Parallel tool calls");
  const limits = h("span", { className: "rtw-session-note rtw-session-limits" }, "none reported yet");
  const voiceNote = h("span", { className: "rtw-session-note rtw-session-voice-note" });
  const output = h("select", { className: "rtw-select rtw-session-output" });
  output.setAttribute("aria-label", "Output");
  output.append(h("option", { value: "audio" }, "audio (with transcript)"), h("option", { value: "text" }, "text"));
  const transcribe = h("input", { type: "checkbox", className: "rtw-session-transcribe" });
  transcribe.setAttribute("aria-label", "Transcribe the user's speech");
  const transcribeNote = h("span", { className: "rtw-session-note" });
  const instructions = h("textarea", { className: "rtw-textarea rtw-session-instructions", rows: 4 });
  instructions.setAttribute("aria-label", "Instructions");
  const apply = h("button", { className: "rtw-button rtw-session-apply", type: "button" }, "Apply instructions");
  apply.title = "Send session.update (Ctrl+Enter)";
  const status = h("div", { className: "rtw-session-status", role: "status" });
  const field = (label: string, ...controls: HTMLElement[]) =>
    h("div", { className: "rtw-row" }, h("span", { className: "rtw-field-label rtw-session-label" }, label), ...controls);
  // Realtime's knobs that GPT-Live does not have (it always speaks and captions both sides).
  const realtimeOnly = [
    field("Reasoning", effort, field("Parallel tool calls", parallel)),
    field("Output", output),
    field("Transcription", transcribe, transcribeNote),
  ];
  el.append(
    models,
    field("Model", model, modelNote),
    h("div", { className: "rtw-row rtw-session-source-row" }, source),
    field("Voice", voice, voiceNote),
    ...realtimeOnly,
    field("Instructions", instructions),
    h("div", { className: "rtw-row" }, apply, status),
    field("Rate limits", limits),
  );
  // The kernel's schema: the known models and voices (suggestions: any name may be typed) and
  // the reasoning efforts, as its installed `openai` types know them.
  void call.checker().then((checker) => {
    if (!checker) return;
    models.replaceChildren(...checker.suggestions("model").map((m) => h("option", { value: m })));
    voices = checker.suggestions("voice");
    for (const v of voices) voice.append(h("option", { value: v }, v));
    for (const e of checker.efforts()) effort.append(h("option", { value: e }, e));
    draw();
  });

  let dirty = false; // the instructions are being edited: don't overwrite them
  let waiting = ""; // the event id of our last update, for its outcome
  let waitingWhat = ""; // and what it changes

  const draw = () => {
    // In a call, the server's session; before one (or after), the config the next starts with.
    const connected = call.state.status === "connected";
    const live = connected && call.session !== null;
    const session = live ? call.session : obj(widget.get("session"));
    const audio = obj(obj(session?.audio).output);
    const input = obj(obj(session?.audio).input);
    if (document.activeElement !== model) model.value = String(session?.model ?? "");
    model.placeholder = "(the endpoint's default)";
    model.disabled = call.state.status === "connecting" || connected;
    modelNote.textContent = connected ? "A call keeps its model: it applies to the next call (disconnect to change it)." : "";
    source.textContent = live ? "As the server reports it." : "The config the next call starts with (w.session).";
    const current = typeof audio.voice === "string" ? audio.voice : obj(audio.voice).id;
    if (typeof current === "string" && current && !voices.includes(current)) {
      voices.push(current); // a custom or newer voice: shown as it is
      voice.append(h("option", { value: current }, current));
    }
    voice.value = typeof current === "string" ? current : "";
    effort.value = String(obj(session?.reasoning).effort ?? "");
    parallel.checked = session?.parallel_tool_calls !== false;
    const modalities = Array.isArray(session?.output_modalities) ? session.output_modalities : ["audio"];
    output.value = modalities.includes("audio") ? "audio" : "text";
    transcribe.checked = Boolean(input.transcription);
    const using = obj(input.transcription).model;
    transcribeNote.textContent = `of your speech (${typeof using === "string" ? using : TRANSCRIBE_MODEL})`;
    if (!dirty && typeof session?.instructions === "string") instructions.value = session.instructions;
    for (const control of [voice, output, transcribe, instructions, apply]) control.disabled = !connected;
    // Reasoning and parallel tool calls: live in a call, else the next call's config.
    effort.disabled = parallel.disabled = call.state.status === "connecting";
    if (connected && call.audioSeen) {
      voice.disabled = true;
      voiceNote.textContent = "Fixed: the model has spoken in this session (the API keeps its voice). Reconnect to change it.";
    } else {
      voiceNote.textContent = connected ? "" : "Set before connecting: RealtimeWidget(voice=…)";
    }
    const gptLive = String(session?.model ?? "").startsWith("gpt-live");
    el.dataset.api = gptLive ? "live" : "realtime";
    for (const row of realtimeOnly) row.hidden = gptLive;
    if (gptLive) {
      // GPT-Live fixes these at creation (the API refuses immutable_field_update).
      const inCall = call.state.status === "connecting" || connected;
      voice.disabled = true;
      instructions.disabled = apply.disabled = inCall;
      source.textContent = inCall
        ? "GPT-Live sets the model, voice and instructions when the session is created: they can't change during a call. Edit them after it ends, for the next call."
        : "The config the next GPT-Live call is created with (w.session).";
      voiceNote.textContent = inCall ? "" : "Set before connecting: RealtimeWidget(voice=…)";
    }
  };

  // A refused change (by the kernel or the server): the controls go back to the session as it
  // is, so they never show what is not in effect; typed instructions stay, to be fixed.
  const refused = (message: string) => {
    if (waitingWhat === "the instructions") dirty = true;
    waiting = "";
    status.textContent = message;
    status.dataset.ok = "false";
    draw();
  };

  const update = async (session: Record<string, unknown>, what: string) => {
    status.textContent = `Applying ${what}…`;
    status.dataset.ok = "true";
    // Our own event id, known before sending: the server's answer may beat the kernel's reply.
    const eventId = newEventId();
    waiting = eventId;
    waitingWhat = what;
    try {
      await call.compose("send", { type: "session.update", event_id: eventId, session: { type: "realtime", ...session } });
      if (waiting === eventId) status.textContent = `Sent ${what}, waiting for session.updated…`;
    } catch (error) {
      if (waiting === eventId) refused(`Not sent: ${(error as Error).message.replace(/^Not sent: /, "")}`);
    }
  };

  // Outside a call: the next call's config, checked by the kernel as update_session() would.
  const configure = async (session: Record<string, unknown>, what: string) => {
    status.textContent = `Setting ${what} for the next call…`;
    status.dataset.ok = "true";
    try {
      await call.configure({ type: "realtime", ...session });
      status.textContent = `${what[0].toUpperCase()}${what.slice(1)} set for the next call ✓`;
    } catch (error) {
      refused(`Not set: ${(error as Error).message.replace(/^Not sent: /, "")}`);
    }
  };
  const change = (session: Record<string, unknown>, what: string) =>
    void (call.state.status === "connected" ? update(session, what) : configure(session, what));
  model.addEventListener("change", () => {
    if (model.value.trim()) void configure({ model: model.value.trim() }, "the model");
  });
  effort.addEventListener("change", () => change({ reasoning: effort.value ? { effort: effort.value } : {} }, "the reasoning effort"));
  parallel.addEventListener("change", () => change({ parallel_tool_calls: parallel.checked }, "parallel tool calls"));
  voice.addEventListener("change", () => void update({ audio: { output: { voice: voice.value } } }, "the voice"));
  output.addEventListener("change", () => void update({ output_modalities: [output.value] }, "the output"));
  transcribe.addEventListener("change", () =>
    void update({ audio: { input: { transcription: transcribe.checked ? { model: TRANSCRIBE_MODEL } : null } } }, "transcription"),
  );
  const sendInstructions = () => {
    dirty = false;
    change({ instructions: instructions.value }, "the instructions");
  };
  instructions.addEventListener("input", () => (dirty = true));
  instructions.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      sendInstructions();
    }
  });
  apply.addEventListener("click", sendInstructions);

  const offEvent = call.on("event", (record: EventRecord) => {
    if (record.dir !== "in") return;
    const type = record.event.type;
    if (type === "session.updated" && waiting) {
      waiting = "";
      status.textContent = "Applied ✓ (session.updated)";
      status.dataset.ok = "true";
    } else if (type === "error") {
      const error = obj((record.event as Record<string, unknown>).error);
      if (waiting && error.event_id === waiting) refused(`Refused by the server: ${String(error.message ?? "")}`);
    }
    if (type === "session.created" || type === "session.updated" || type === "session.started" || type === "output_audio_buffer.started") draw();
    if (type === "rate_limits.updated") limits.textContent = rateLimits((record.event as Record<string, unknown>).rate_limits);
  });
  const offState = call.on("state", draw);
  // Python's update_session() outside a call changes the trait: show it.
  widget.on("change:session", draw);
  draw();
  return () => {
    offEvent();
    offState();
    widget.off("change:session", draw);
  };
}

/** "requests 4,990 of 5,000 (resets in 60 s) · tokens …": the latest rate_limits.updated. */
export function rateLimits(value: unknown): string {
  if (!Array.isArray(value) || !value.length) return "none reported";
  return value
    .map((limit) => {
      const l = obj(limit);
      const n = (v: unknown) => (typeof v === "number" ? v.toLocaleString("en-US") : "?");
      const reset = typeof l.reset_seconds === "number" ? ` (resets in ${Math.round(l.reset_seconds)} s)` : "";
      return `${String(l.name ?? "?")} ${n(l.remaining)} of ${n(l.limit)}${reset}`;
    })
    .join(" · ");
}
