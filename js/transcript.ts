// The conversation as the views show it: user and assistant turns with live deltas, images,
// failed transcriptions, function calls and their results, and MCP servers' listings, calls and
// approval requests. Kept per call (not per view), so a view rendered later shows the turns so
// far. No DOM here: ui/transcript.ts draws it.

import type { RealtimeEvent, TurnFigures } from "./protocol";

const FIGURES_KEPT = 1000; // responses whose latency and cost are kept for the views
// GPT-Live sends no end of turn: a speaker's turn ends when the other starts one after it, or
// after this long of its own silence (session/live.py's rule, the same ids: live_user_N).
const LIVE_TURN_GAP_MS = 1500;
type Speaker = "user" | "assistant";

/** GPT-Live's captions as turns (see LIVE_TURN_GAP_MS). */
class Captions {
  private count = { user: 0, assistant: 0 };
  private open: Record<Speaker, string | null> = { user: null, assistant: null };
  private lastEnd: Record<Speaker, number | null> = { user: null, assistant: null };
  private seq = 0;
  private lastSeq = { user: 0, assistant: 0 };
  private beganSeq = { user: 0, assistant: 0 };

  reset(): void {
    this.open = { user: null, assistant: null };
    this.lastEnd = { user: null, assistant: null };
  }

  apply(role: Speaker, start: unknown, end: unknown): { id: string; closed: string | null } {
    const other: Speaker = role === "user" ? "assistant" : "user";
    this.seq++;
    let current = this.open[role];
    let closed: string | null = null;
    if (current !== null) {
      const last = this.lastEnd[role];
      const paused = typeof start === "number" && last !== null && start - last >= LIVE_TURN_GAP_MS;
      if (paused || this.beganSeq[other] > this.lastSeq[role]) {
        closed = current;
        current = null;
      }
    }
    if (current === null) {
      current = `live_${role}_${++this.count[role]}`;
      this.open[role] = current;
      this.beganSeq[role] = this.seq;
    }
    this.lastSeq[role] = this.seq;
    if (typeof end === "number") this.lastEnd[role] = end;
    return { id: current, closed };
  }
}
const LISTING = "listing its tools…";

export type TurnKind = "message" | "tool" | "mcp" | "listing" | "approval";

export interface Approval {
  id: string; // the approval request's item id
  answered: boolean | null; // null: waiting for an answer
}

export interface Turn {
  id: string;
  kind: TurnKind;
  role: "user" | "assistant" | "tool";
  text: string;
  done: boolean;
  truncated: boolean; // cut short (barge-in, interrupt)
  failed: boolean; // a failed transcription, MCP call or listing
  images: string[]; // input_image URLs (data URLs), for thumbnails
  approval: Approval | null;
  responseId: string; // the response that produced it (model output), once known
  audio: boolean; // spoken (user speech, the model's voice): a recorded call can play it
  version: number; // bumps on every change: views redraw a row when it moved
}

const str = (value: unknown): string => (typeof value === "string" ? value : "");
const obj = (value: unknown): Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};

function kindOf(type: string): TurnKind | null {
  if (type === "message") return "message";
  if (type === "function_call" || type === "function_call_output") return "tool";
  if (type === "mcp_call") return "mcp";
  if (type === "mcp_list_tools") return "listing";
  if (type === "mcp_approval_request" || type === "mcp_approval_response") return "approval";
  return null;
}

export class TranscriptModel {
  private turns = new Map<string, Turn>();
  private order: string[] = [];
  // The list as last computed (null: stale). Only a change of membership (a turn added,
  // deleted, or shown or hidden) makes it stale, not a delta: views key their layout on it.
  private visible: Turn[] | null = null;
  private lasts: Map<string, string> | null = null; // response id → its last shown turn
  private captions = new Captions();
  /** The kernel's figures by response id (the newest FIGURES_KEPT). */
  readonly figures = new Map<string, TurnFigures>();

  setFigures(figures: TurnFigures): void {
    this.figures.delete(figures.response_id);
    this.figures.set(figures.response_id, figures);
    if (this.figures.size > FIGURES_KEPT) this.figures.delete(this.figures.keys().next().value!);
  }

  /** The turns a view shows, in order (an empty finished turn shows nothing). */
  get list(): Turn[] {
    this.visible ??= this.order.map((id) => this.turns.get(id)!).filter(shown);
    return this.visible;
  }

  /** Is this the last shown turn of its response (where the response's figures go)? */
  isLastOfResponse(turn: Turn): boolean {
    if (!turn.responseId) return false;
    if (this.lasts === null) {
      this.lasts = new Map();
      for (const t of this.list) if (t.responseId) this.lasts.set(t.responseId, t.id);
    }
    return this.lasts.get(turn.responseId) === turn.id;
  }

  get(id: string): Turn | undefined {
    return this.turns.get(id);
  }

  /** Fold one server event in; returns true when the visible transcript changed. */
  apply(event: RealtimeEvent): boolean {
    return this.fold(event);
  }

  private reshaped(): void {
    this.visible = null;
    this.lasts = null;
  }

  private fold(event: RealtimeEvent): boolean {
    const e = event as Record<string, unknown>;
    switch (event.type) {
      case "conversation.item.added":
      case "conversation.item.created":
      case "conversation.item.done":
      case "conversation.item.retrieved":
        return this.upsert(obj(e.item), str(e.previous_item_id));
      case "response.output_text.delta":
        return this.edit(str(e.item_id), (t) => (t.text += str(e.delta)), str(e.delta) !== "");
      case "response.output_audio_transcript.delta":
      case "conversation.item.input_audio_transcription.delta":
        return this.edit(str(e.item_id), (t) => {
          t.text += str(e.delta);
          t.audio = true;
        }, str(e.delta) !== "");
      case "response.output_text.done":
        return this.edit(str(e.item_id), (t) => (t.text = str(e.text)), str(e.text) !== "");
      case "response.output_audio_transcript.done":
      case "conversation.item.input_audio_transcription.completed":
        return this.edit(str(e.item_id), (t) => (t.text = str(e.transcript)), str(e.transcript) !== "");
      case "conversation.item.input_audio_transcription.failed":
        return this.edit(str(e.item_id), (t) => {
          t.failed = true;
          if (!t.text) t.text = `(transcription failed: ${str(obj(e.error).message) || "unknown error"})`;
        });
      case "response.function_call_arguments.done":
        return this.edit(str(e.item_id), (t) => (t.text = `${str(e.name)}(${str(e.arguments)})`));
      case "response.mcp_call.failed":
        return this.edit(str(e.item_id), (t) => (t.failed = true));
      case "mcp_list_tools.failed":
        return this.edit(str(e.item_id), (t) => {
          t.failed = true;
          t.text = t.text.replace(LISTING, "its tools could not be listed");
        });
      case "response.done": {
        // The kernel's per-turn figures are keyed by response: remember whose items these are.
        const response = obj(e.response);
        const output = Array.isArray(response.output) ? response.output : [];
        let changed = false;
        for (const item of output) {
          changed = this.edit(str(obj(item).id), (t) => (t.responseId = str(response.id)), true) || changed;
          this.lasts = null;
          if (response.status === "cancelled") this.edit(str(obj(item).id), (t) => (t.truncated = true));
        }
        return changed;
      }
      case "conversation.item.truncated":
        return this.edit(str(e.item_id), (t) => (t.truncated = true));
      case "session.started":
        this.captions.reset(); // a new GPT-Live call: turns go on numbering, none is open
        return false;
      case "session.input_transcript.delta":
      case "session.output_transcript.delta": {
        const role: Speaker = event.type === "session.input_transcript.delta" ? "user" : "assistant";
        const { id, closed } = this.captions.apply(role, e.start_ms, e.end_ms);
        if (closed) this.edit(closed, (t) => (t.done = true));
        if (!this.turns.has(id)) this.upsert({ id, type: "message", role, status: "in_progress" }, "");
        return this.edit(id, (t) => {
          t.text += str(e.delta);
          t.audio = true;
        }, str(e.delta) !== "");
      }
      case "session.closed":
        for (const turn of this.turns.values()) if (turn.id.startsWith("live_") && !turn.done) this.edit(turn.id, (t) => (t.done = true));
        return true;
      case "response.event": {
        // GPT-Live's tools: the delegated Responses stream's completed function call.
        const inner = obj(e.event);
        const item = obj(inner.item);
        if (inner.type !== "response.output_item.done" || item.type !== "function_call") return false;
        return this.upsert({ ...item, id: str(item.id) || `fc_${str(item.call_id)}`, status: "completed" }, "");
      }
      case "response.item.create": {
        // Sent by the kernel: the tool's output (GPT-Live echoes no item back).
        const item = obj(e.item);
        if (item.type !== "function_call_output") return false;
        return this.upsert({ ...item, id: `out_${str(item.call_id)}`, status: "completed" }, "");
      }
      case "conversation.item.deleted": {
        const id = str(e.item_id);
        if (!this.turns.delete(id)) return false;
        this.order = this.order.filter((other) => other !== id);
        this.reshaped();
        return true;
      }
      default:
        return false;
    }
  }

  private edit(id: string, change: (turn: Turn) => void, when = true): boolean {
    const turn = this.turns.get(id);
    if (!turn || !when) return false;
    const was = shown(turn);
    change(turn);
    if (shown(turn) !== was) this.reshaped();
    turn.version++;
    return true;
  }

  private upsert(item: Record<string, unknown>, previous: string): boolean {
    if (typeof item.id !== "string") return false;
    const kind = kindOf(str(item.type));
    if (kind === null) return false;
    let role: Turn["role"] = "tool";
    if (kind === "message") {
      if (item.role !== "user" && item.role !== "assistant") return false;
      role = item.role;
    }
    let turn = this.turns.get(item.id);
    const was = turn !== undefined && shown(turn);
    if (!turn) {
      turn = { id: item.id, kind, role, text: "", done: false, truncated: false, failed: false, images: [], approval: null, responseId: "", audio: false, version: 0 };
      this.turns.set(item.id, turn);
      const at = previous && this.order[this.order.length - 1] !== previous ? this.order.indexOf(previous) : -1;
      if (at >= 0) this.order.splice(at + 1, 0, item.id);
      else this.order.push(item.id);
      this.reshaped();
    }
    const text = itemText(item);
    if (text) turn.text = text;
    else if (kind === "listing" && !turn.text) turn.text = `${str(item.server_label) || "mcp"}: ${LISTING}`;
    if (kind === "message") {
      const images = (Array.isArray(item.content) ? item.content : [])
        .map((p) => obj(p))
        .filter((p) => p.type === "input_image" && typeof p.image_url === "string")
        .map((p) => p.image_url as string);
      if (images.length) turn.images = images;
      const spoken = (Array.isArray(item.content) ? item.content : []).some((p) => ["input_audio", "output_audio", "audio"].includes(str(obj(p).type)));
      if (spoken) turn.audio = true;
    }
    if (item.type === "mcp_call" && item.error) turn.failed = true;
    if (item.type === "mcp_approval_request") turn.approval ??= { id: item.id, answered: null };
    if (item.type === "mcp_approval_response") {
      const asked = this.turns.get(str(item.approval_request_id));
      if (asked?.approval) {
        asked.approval.answered = item.approve === true;
        asked.version++;
      }
    }
    // MCP items have no status, and nothing streams into their row: never "live".
    turn.done = kind === "message" || kind === "tool" ? item.status === "completed" || item.status === "incomplete" : true;
    if (shown(turn) !== was) this.reshaped();
    turn.version++;
    return true;
  }
}

/** A view shows a turn unless it finished empty. */
function shown(turn: Turn): boolean {
  return turn.text !== "" || !turn.done || turn.images.length > 0;
}

function itemText(item: Record<string, unknown>): string {
  const label = str(item.server_label) || "mcp";
  switch (item.type) {
    case "function_call":
      return `${str(item.name)}(${str(item.arguments)})`;
    case "function_call_output":
      return `→ ${str(item.output)}`;
    case "mcp_call": {
      const call = `${label}.${str(item.name)}(${str(item.arguments)})`;
      if (item.error) return `${call} ✗ ${str(obj(item.error).message) || "failed"}`;
      return typeof item.output === "string" ? `${call} → ${item.output}` : call;
    }
    case "mcp_list_tools": {
      const tools = Array.isArray(item.tools) ? item.tools.map((t) => str(obj(t).name)).filter(Boolean) : [];
      return tools.length ? `${label} offers: ${tools.join(", ")}` : "";
    }
    case "mcp_approval_request":
      return `approval asked for ${label}.${str(item.name)}(${str(item.arguments)})`;
    case "mcp_approval_response":
      return "";
    default: {
      const content = Array.isArray(item.content) ? item.content : [];
      return content.map((part) => str(obj(part).text) || str(obj(part).transcript)).join("");
    }
  }
}
