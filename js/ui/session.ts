// The Session panel: model, voice, instructions, output modalities, input transcription, as the
// server reports them (session.created / session.updated) during a call, and as the synced
// `session` trait holds them (the config the next call starts with) outside one. Changes are
// session.update events the kernel checks and sends (as widget.update_session would); the voice
// is fixed once the model has spoken, and the panel says so instead of sending an update the API
// would refuse.

import type { AnyModel } from "@anywidget/types";
import type { Call } from "../call";
import type { EventRecord } from "../protocol";
import { VOICES } from "../schema";
import { newEventId } from "./composer";
import { h } from "./dom";
const TRANSCRIBE_MODEL = "gpt-4o-mini-transcribe";

const obj = (value: unknown): Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};

export function renderSession(el: HTMLElement, call: Call, widget: AnyModel): () => void {
  const model = h("code", { className: "rtw-session-model" });
  const source = h("span", { className: "rtw-session-note rtw-session-source" });
  const voice = h("select", { className: "rtw-select rtw-session-voice" });
  voice.setAttribute("aria-label", "Voice");
  // No voice in the config: the server picks its default (marin on OpenAI).
  voice.append(h("option", { value: "", disabled: true }, "(the server's default)"));
  for (const v of VOICES) voice.append(h("option", { value: v }, v));
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
  el.append(
    field("Model", model, source),
    field("Voice", voice, voiceNote),
    field("Output", output),
    field("Transcription", transcribe, transcribeNote),
    field("Instructions", instructions),
    h("div", { className: "rtw-row" }, apply, status),
  );

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
    model.textContent = String(session?.model ?? "(the endpoint's default)");
    source.textContent = live ? "as the server reports it" : "the config the next call starts with (w.session)";
    const current = typeof audio.voice === "string" ? audio.voice : obj(audio.voice).id;
    voice.value = typeof current === "string" && VOICES.includes(current) ? current : "";
    const modalities = Array.isArray(session?.output_modalities) ? session.output_modalities : ["audio"];
    output.value = modalities.includes("audio") ? "audio" : "text";
    transcribe.checked = Boolean(input.transcription);
    const using = obj(input.transcription).model;
    transcribeNote.textContent = `of your speech (${typeof using === "string" ? using : TRANSCRIBE_MODEL})`;
    if (!dirty && typeof session?.instructions === "string") instructions.value = session.instructions;
    for (const control of [voice, output, transcribe, instructions, apply]) control.disabled = !connected;
    if (connected && call.audioSeen) {
      voice.disabled = true;
      voiceNote.textContent = "Fixed: the model has spoken in this session (the API keeps its voice). Reconnect to change it.";
    } else {
      voiceNote.textContent = connected ? "" : "Set before connecting: RealtimeWidget(voice=…)";
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

  voice.addEventListener("change", () => void update({ audio: { output: { voice: voice.value } } }, "the voice"));
  output.addEventListener("change", () => void update({ output_modalities: [output.value] }, "the output"));
  transcribe.addEventListener("change", () =>
    void update({ audio: { input: { transcription: transcribe.checked ? { model: TRANSCRIBE_MODEL } : null } } }, "transcription"),
  );
  const sendInstructions = () => {
    dirty = false;
    void update({ instructions: instructions.value }, "the instructions");
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
    if (type === "session.created" || type === "session.updated" || type === "output_audio_buffer.started") draw();
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
