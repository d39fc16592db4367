// The conversation as the views show it: user and assistant turns with live deltas, tool calls.
// Kept per call (not per view), so a view rendered later shows the turns so far.

import type { RealtimeEvent, TurnFigures } from "./protocol";

const FIGURES_KEPT = 1000; // responses whose latency and cost are kept for the views

export interface Turn {
  id: string;
  role: "user" | "assistant" | "tool";
  text: string;
  done: boolean;
  truncated: boolean;
  responseId: string; // the response that produced it (model output), once known
}

const str = (value: unknown): string => (typeof value === "string" ? value : "");

export class TranscriptModel {
  private turns = new Map<string, Turn>();
  private order: string[] = [];
  /** The kernel's figures by response id (the newest FIGURES_KEPT). */
  readonly figures = new Map<string, TurnFigures>();

  setFigures(figures: TurnFigures): void {
    this.figures.delete(figures.response_id);
    this.figures.set(figures.response_id, figures);
    if (this.figures.size > FIGURES_KEPT) this.figures.delete(this.figures.keys().next().value!);
  }

  get list(): Turn[] {
    return this.order.map((id) => this.turns.get(id)!).filter((t) => t.text !== "" || !t.done);
  }

  /** Fold one server event in; returns true when the visible transcript changed. */
  apply(event: RealtimeEvent): boolean {
    const e = event as Record<string, unknown>;
    switch (event.type) {
      case "conversation.item.added":
      case "conversation.item.created":
      case "conversation.item.done":
        return this.upsert(e.item as Record<string, unknown>, str(e.previous_item_id));
      case "response.output_text.delta":
      case "response.output_audio_transcript.delta":
      case "conversation.item.input_audio_transcription.delta":
        return this.append(str(e.item_id), str(e.delta));
      case "response.output_text.done":
        return this.replace(str(e.item_id), str(e.text));
      case "response.output_audio_transcript.done":
      case "conversation.item.input_audio_transcription.completed":
        return this.replace(str(e.item_id), str(e.transcript));
      case "response.function_call_arguments.done":
        return this.replace(str(e.item_id), `${str(e.name)}(${str(e.arguments)})`);
      case "response.done": {
        // The kernel's per-turn figures are keyed by response: remember whose items these are.
        const response = (e.response ?? {}) as Record<string, unknown>;
        const output = Array.isArray(response.output) ? response.output : [];
        let changed = false;
        for (const item of output) {
          const turn = this.turns.get(str((item as Record<string, unknown>)?.id));
          if (turn && turn.responseId !== str(response.id)) {
            turn.responseId = str(response.id);
            changed = true;
          }
        }
        return changed;
      }
      case "conversation.item.truncated": {
        const turn = this.turns.get(str(e.item_id));
        if (turn) turn.truncated = true;
        return turn !== undefined;
      }
      case "conversation.item.deleted": {
        const id = str(e.item_id);
        if (!this.turns.delete(id)) return false;
        this.order = this.order.filter((other) => other !== id);
        return true;
      }
      default:
        return false;
    }
  }

  private upsert(item: Record<string, unknown> | undefined, previous: string): boolean {
    if (!item || typeof item.id !== "string") return false;
    const type = str(item.type);
    let role: Turn["role"];
    if (type === "message" && (item.role === "user" || item.role === "assistant")) role = item.role;
    else if (type === "function_call" || type === "function_call_output") role = "tool";
    else return false;
    let turn = this.turns.get(item.id);
    if (!turn) {
      turn = { id: item.id, role, text: "", done: false, truncated: false, responseId: "" };
      this.turns.set(item.id, turn);
      const at = previous ? this.order.indexOf(previous) : -1;
      if (at >= 0) this.order.splice(at + 1, 0, item.id);
      else this.order.push(item.id);
    }
    const text = itemText(item);
    if (text) turn.text = text;
    turn.done = item.status === "completed" || item.status === "incomplete";
    return true;
  }

  private append(id: string, delta: string): boolean {
    const turn = this.turns.get(id);
    if (!turn || !delta) return false;
    turn.text += delta;
    return true;
  }

  private replace(id: string, text: string): boolean {
    const turn = this.turns.get(id);
    if (!turn || !text) return false;
    turn.text = text;
    return true;
  }
}

function itemText(item: Record<string, unknown>): string {
  if (item.type === "function_call") return `${str(item.name)}(${str(item.arguments)})`;
  if (item.type === "function_call_output") return `→ ${str(item.output)}`;
  const content = Array.isArray(item.content) ? item.content : [];
  return content
    .map((part) => {
      const p = part as Record<string, unknown>;
      return str(p.text) || str(p.transcript);
    })
    .join("");
}
