// The event composer: type (or pick a template of) a client event, see it checked as you type,
// send it with Ctrl/Cmd+Enter. Each keystroke is checked here at once, by ../checks.ts over the
// schema the kernel made from its `openai` types (the same rules and messages as widget.send());
// until that schema has arrived (the kernel busy with a cell), the kernel checks once typing
// pauses. Sending goes through the kernel, which checks again. Errors the server returns are
// shown beside the event that caused them.

import type { Call } from "../call";
import type { EventRecord } from "../protocol";
import { type Checker, checkText } from "../checks";
import { h } from "./dom";

const CHECK_DELAY_MS = 250; // ask the kernel once typing pauses

/** A client event id made in the browser, so a server error can be matched before the kernel's
 * reply arrives (the kernel keeps an event_id it is given). */
export function newEventId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(10));
  return `evt_${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}
const SENT_KEPT = 50;

type Template = { label: string; event: (call: Call) => Record<string, unknown> };

const lastAssistant = (call: Call): string =>
  [...call.transcript.list].reverse().find((t) => t.role === "assistant")?.id ?? "item_…";

/** The id of the last MCP approval request the server sent, for the approval template. */
function lastApproval(call: Call): string {
  for (const row of call.log.list().reverse()) {
    const item = (row.records[0].event as Record<string, unknown>).item as Record<string, unknown> | undefined;
    if (row.dir === "in" && item?.type === "mcp_approval_request") return String(item.id);
  }
  return "mcpr_…";
}

export const TEMPLATES: Record<string, Template> = {
  "session.update": {
    label: "session.update: instructions",
    event: () => ({ type: "session.update", session: { type: "realtime", instructions: "Speak like a pirate." } }),
  },
  "conversation.item.create": {
    label: "conversation.item.create: a user message",
    event: () => ({
      type: "conversation.item.create",
      item: { type: "message", role: "user", content: [{ type: "input_text", text: "Hello!" }] },
    }),
  },
  "response.create": {
    label: "response.create: out of band",
    event: () => ({
      type: "response.create",
      response: {
        conversation: "none",
        output_modalities: ["text"],
        instructions: "Summarize the conversation so far in one sentence.",
        metadata: { purpose: "summary" },
      },
    }),
  },
  "response.create.reasoning": {
    label: "response.create: reasoning effort, parallel tool calls",
    event: () => ({ type: "response.create", response: { reasoning: { effort: "low" }, parallel_tool_calls: true } }),
  },
  "mcp_approval_response": {
    label: "conversation.item.create: approve an MCP call",
    event: (call) => ({
      type: "conversation.item.create",
      item: { type: "mcp_approval_response", id: "item_approval_1", approval_request_id: lastApproval(call), approve: true },
    }),
  },
  "response.cancel": { label: "response.cancel", event: () => ({ type: "response.cancel" }) },
  "conversation.item.truncate": {
    label: "conversation.item.truncate: the last reply",
    event: (call) => ({ type: "conversation.item.truncate", item_id: lastAssistant(call), content_index: 0, audio_end_ms: 1000 }),
  },
};

/** GPT-Live's commands (a call to a `gpt-live-*` model). */
export const LIVE_TEMPLATES: Record<string, Template> = {
  "session.instructions.append": {
    label: "session.instructions.append: steer the model",
    event: () => ({ type: "session.instructions.append", content: "From now on, answer in French.", delegation_id: null }),
  },
  "session.commentary.append": {
    label: "session.commentary.append: words to say",
    event: () => ({ type: "session.commentary.append", content: "One moment, I am checking that.", delegation_id: null }),
  },
  "session.thinking.append": {
    label: "session.thinking.append: a silent fact",
    event: () => ({ type: "session.thinking.append", content: "The shop opens at nine.", delegation_id: null }),
  },
  "session.input_audio.mute": { label: "session.input_audio.mute", event: () => ({ type: "session.input_audio.mute" }) },
  "session.input_audio.unmute": { label: "session.input_audio.unmute", event: () => ({ type: "session.input_audio.unmute" }) },
  "session.close": { label: "session.close: end gracefully, with usage", event: () => ({ type: "session.close" }) },
};

/** The text's event, or its problem as the composer shows it (the field named, as Python does). */
export function quickCheck(
  text: string,
  checker: Checker | null,
  live = false,
): { event: Record<string, unknown> | null; problem: string } {
  const { event, problem } = checkText(text, checker, live ? "live_client_event" : "client_event");
  if (!problem) return { event, problem: "" };
  return { event: null, problem: problem.param && !problem.message.includes(`'${problem.param}'`) ? `${problem.message} (field '${problem.param}')` : problem.message };
}

interface Sent {
  type: string;
  eventId: string;
  row: HTMLElement;
  outcome: HTMLElement;
}

export function renderComposer(el: HTMLElement, call: Call): () => void {
  const picker = h("select", { className: "rtw-select rtw-compose-template" });
  picker.setAttribute("aria-label", "Event template");
  // Realtime's templates, or GPT-Live's once a call shows the session is one.
  let shownLive: boolean | null = null;
  const templates = () => (call.live ? LIVE_TEMPLATES : TEMPLATES);
  const fillPicker = () => {
    if (shownLive === call.live) return;
    shownLive = call.live;
    picker.replaceChildren(h("option", { value: "" }, "Templates…"));
    for (const [id, t] of Object.entries(templates())) picker.append(h("option", { value: id }, t.label));
  };
  fillPicker();
  const text = h("textarea", { className: "rtw-textarea rtw-compose-text", rows: 7, spellcheck: false });
  text.setAttribute("aria-label", "Client event JSON");
  text.placeholder = '{"type": "response.create"}';
  const problem = h("div", { className: "rtw-compose-problem", role: "status" });
  const send = h("button", { className: "rtw-button rtw-compose-send", type: "button" }, "Send");
  send.title = "Send (Ctrl+Enter or ⌘+Enter)";
  const hint = h("span", { className: "rtw-compose-hint" }, "Checked as you type, and by the kernel as widget.send() would; Ctrl/⌘+Enter sends.");
  const sentList = h("div", { className: "rtw-compose-sent", role: "log" });
  sentList.setAttribute("aria-label", "Sent events");
  // In the order of the work (pick, type, read the check, send), which is also the tab order.
  el.append(
    h("div", { className: "rtw-compose-bar" }, picker, hint),
    text,
    h("div", { className: "rtw-compose-foot" }, problem, send),
    sentList,
  );

  let valid = false;
  let checker: Checker | null = null; // the kernel's schema, once it has come
  let checking = 0; // the latest check; older answers are stale
  let timer: number | null = null;
  const sent = new Map<string, Sent>();

  const show = (message: string, ok: boolean) => {
    problem.textContent = message;
    problem.dataset.ok = String(ok);
  };
  const draw = () => {
    send.disabled = !valid || call.state.status !== "connected";
    fillPicker();
  };

  // The kernel's check of the text as it stands (the full schema), once typing pauses.
  const check = async (event: Record<string, unknown>, mine: number) => {
    timer = null;
    try {
      await call.compose("check", event);
      if (mine !== checking) return;
      valid = true;
      show(`✓ a valid ${String(event.type)}`, true);
    } catch (error) {
      if (mine !== checking) return;
      valid = false;
      show((error as Error).message.replace(/^Not sent: /, ""), false);
    }
    draw();
  };
  // Every edit: the checks here at once; the kernel's only for text that passes them.
  const schedule = () => {
    valid = false;
    const mine = ++checking; // answers to older checks are stale
    if (timer !== null) window.clearTimeout(timer);
    timer = null;
    const { event, problem: wrong } = quickCheck(text.value, checker, call.live);
    if (!event) show(text.value.trim() ? wrong : "", false);
    else if (checker) {
      valid = true; // the kernel's own rules, run here: it would say the same
      show(`✓ a valid ${String(event.type)}`, true);
    } else {
      show("Checking…", true);
      timer = window.setTimeout(() => void check(event, mine), CHECK_DELAY_MS);
    }
    draw();
  };
  void call.checker().then((found) => {
    checker = found;
    if (found && text.value.trim()) schedule();
  });

  const submit = async () => {
    const { event } = quickCheck(text.value, checker, call.live);
    if (!event || !valid || call.state.status !== "connected") return;
    const outcome = h("span", { className: "rtw-compose-outcome" }, "sending…");
    const row = h("div", { className: "rtw-compose-row" }, h("code", {}, String(event.type)), outcome);
    sentList.prepend(row);
    while (sentList.childElementCount > SENT_KEPT) sentList.lastElementChild?.remove();
    const eventId = typeof event.event_id === "string" && event.event_id ? event.event_id : newEventId();
    const entry = { type: String(event.type), eventId, row, outcome };
    sent.set(eventId, entry);
    if (sent.size > SENT_KEPT) sent.delete(sent.keys().next().value!);
    row.dataset.eventId = eventId;
    try {
      await call.compose("send", { ...event, event_id: eventId });
      if (!row.classList.contains("rtw-compose-error")) outcome.textContent = `sent · ${eventId}`;
    } catch (error) {
      sent.delete(eventId);
      row.classList.add("rtw-compose-refused");
      outcome.textContent = `not sent: ${(error as Error).message.replace(/^Not sent: /, "")}`;
    }
  };

  picker.addEventListener("change", () => {
    const template = templates()[picker.value];
    if (!template) return;
    text.value = JSON.stringify(template.event(call), null, 2);
    picker.value = "";
    text.focus();
    schedule();
  });
  text.addEventListener("input", schedule);
  text.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      void submit();
    }
  });
  send.addEventListener("click", () => void submit());

  // The server names the event that caused an error: show it beside that event.
  const offEvent = call.on("event", (record: EventRecord) => {
    if (record.dir !== "in" || record.event.type !== "error") return;
    const error = (record.event as Record<string, unknown>).error as Record<string, unknown> | undefined;
    // Realtime names it event_id; GPT-Live, client_event_id.
    const entry = sent.get(String(error?.event_id ?? error?.client_event_id ?? ""));
    if (!entry) return;
    entry.row.classList.add("rtw-compose-error");
    entry.outcome.textContent = `server error: ${String(error?.message ?? "")}${error?.code ? ` (${String(error.code)})` : ""}`;
  });
  const offState = call.on("state", draw);
  draw();
  return () => {
    offEvent();
    offState();
    if (timer !== null) window.clearTimeout(timer);
  };
}
