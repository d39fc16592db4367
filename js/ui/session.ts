// The Session panel: model, voice, instructions, output modalities, input transcription, as the
// server reports them (session.created / session.updated). Changes are session.update events
// the kernel checks and sends (as widget.update_session would); the voice is fixed once the
// model has spoken, and the panel says so instead of sending an update the API would refuse.

import type { Call } from "../call";
import type { EventRecord } from "../protocol";
import { newEventId } from "./composer";
import { h } from "./dom";

export const VOICES = ["alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"];
const TRANSCRIBE_MODEL = "gpt-4o-mini-transcribe";

const obj = (value: unknown): Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};

export function renderSession(el: HTMLElement, call: Call): () => void {
  const model = h("code", { className: "rtw-session-model" });
  const voice = h("select", { className: "rtw-select rtw-session-voice" });
  voice.setAttribute("aria-label", "Voice");
  for (const v of VOICES) voice.append(h("option", { value: v }, v));
  const voiceNote = h("span", { className: "rtw-session-note rtw-session-voice-note" });
  const output = h("select", { className: "rtw-select rtw-session-output" });
  output.setAttribute("aria-label", "Output");
  output.append(h("option", { value: "audio" }, "audio (with transcript)"), h("option", { value: "text" }, "text"));
  const transcribe = h("input", { type: "checkbox", className: "rtw-session-transcribe" });
  transcribe.setAttribute("aria-label", "Transcribe the user's speech");
  const instructions = h("textarea", { className: "rtw-textarea rtw-session-instructions", rows: 4 });
  instructions.setAttribute("aria-label", "Instructions");
  const apply = h("button", { className: "rtw-button rtw-session-apply", type: "button" }, "Apply instructions");
  apply.title = "Send session.update (Ctrl+Enter)";
  const status = h("div", { className: "rtw-session-status", role: "status" });
  const field = (label: string, ...controls: HTMLElement[]) =>
    h("div", { className: "rtw-row" }, h("span", { className: "rtw-field-label rtw-session-label" }, label), ...controls);
  el.append(
    field("Model", model),
    field("Voice", voice, voiceNote),
    field("Output", output),
    field("Transcription", transcribe, h("span", { className: "rtw-session-note" }, `of your speech (${TRANSCRIBE_MODEL})`)),
    field("Instructions", instructions),
    h("div", { className: "rtw-row" }, apply, status),
  );

  let dirty = false; // the instructions are being edited: don't overwrite them
  let waiting = ""; // the event id of our last update, for its outcome

  const draw = () => {
    const session = call.session;
    const connected = call.state.status === "connected";
    const audio = obj(obj(session?.audio).output);
    const input = obj(obj(session?.audio).input);
    model.textContent = String(session?.model ?? "(connect to see the session)");
    const current = typeof audio.voice === "string" ? audio.voice : obj(audio.voice).id;
    if (typeof current === "string") voice.value = current;
    const modalities = Array.isArray(session?.output_modalities) ? session.output_modalities : ["audio"];
    output.value = modalities.includes("audio") ? "audio" : "text";
    transcribe.checked = Boolean(input.transcription);
    if (!dirty && typeof session?.instructions === "string") instructions.value = session.instructions;
    for (const control of [voice, output, transcribe, instructions, apply]) control.disabled = !connected;
    if (connected && call.audioSeen) {
      voice.disabled = true;
      voiceNote.textContent = "Fixed: the model has spoken in this session (the API keeps its voice). Reconnect to change it.";
    } else {
      voiceNote.textContent = connected ? "" : "Set before connecting: RealtimeWidget(voice=…)";
    }
  };

  const update = async (session: Record<string, unknown>, what: string) => {
    status.textContent = `Applying ${what}…`;
    status.dataset.ok = "true";
    // Our own event id, known before sending: the server's answer may beat the kernel's reply.
    const eventId = newEventId();
    waiting = eventId;
    try {
      await call.compose("send", { type: "session.update", event_id: eventId, session: { type: "realtime", ...session } });
      if (waiting === eventId) status.textContent = `Sent ${what}, waiting for session.updated…`;
    } catch (error) {
      waiting = "";
      status.textContent = `Not sent: ${(error as Error).message.replace(/^Not sent: /, "")}`;
      status.dataset.ok = "false";
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
      if (waiting && error.event_id === waiting) {
        waiting = "";
        status.textContent = `Refused by the server: ${String(error.message ?? "")}`;
        status.dataset.ok = "false";
      }
    }
    if (type === "session.created" || type === "session.updated" || type === "output_audio_buffer.started") draw();
  });
  const offState = call.on("state", draw);
  draw();
  return () => {
    offEvent();
    offState();
  };
}
