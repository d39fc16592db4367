// The kernel <-> browser messages of docs/protocol.md. Kernel messages are checked on arrival.

export type Status = "idle" | "connecting" | "connected" | "closed" | "error";
export type Step = "microphone" | "key" | "sdp" | "ice" | "channel";
export type Direction = "in" | "out";
export type RealtimeEvent = { type: string; [key: string]: unknown };

export interface EventRecord {
  dir: Direction;
  t: number; // ms since the epoch, this browser's clock
  event: RealtimeEvent;
}

export type BrowserMessage =
  | { kind: "hello" }
  | { kind: "events"; events: EventRecord[] }
  | {
      kind: "status";
      status: Exclude<Status, "idle">;
      error: string | null;
      step: Step | null;
      call_id: string | null;
      muted: boolean;
      microphone: string | null; // why there is no microphone (the call is text only), or null
      max_message_size?: number | null; // the data channel's largest message, once connected
    }
  | { kind: "request"; id: number; op: "key" }
  | { kind: "request"; id: number; op: "relay"; sdp: string }
  | { kind: "request"; id: number; op: "check" | "send"; event: Record<string, unknown> }
  | { kind: "request"; id: number; op: "schema" }
  | { kind: "request"; id: number; op: "configure"; event: Record<string, unknown> }
  | { kind: "request"; id: number; op: "approve"; approval_request_id: string; approve: boolean }
  | { kind: "request"; id: number; op: "clip"; item_id: string }
  | { kind: "played"; id: number; ok: boolean; error?: string }
  // A chunk of the call's recording: stereo PCM16 in the binary buffer, from `frame` of the
  // page's audio clock whose frame 0 was at page time `t0` (record=True).
  | { kind: "audio"; t0: number; frame: number }
  // record=True, but this page cannot record (no AudioWorklet): the kernel says so.
  | { kind: "unrecorded"; error: string };

export interface KeyReply {
  secret: string;
  calls_url: string;
  expires_at: number;
}
export interface RelayReply {
  sdp: string;
  call_id: string;
}

/** One response's figures as the kernel measured them (metrics.py), sent on its response.done. */
export interface TurnFigures {
  response_id: string;
  latency_ms: number | null;
  cost: number | null;
}

export type KernelMessage =
  | { kind: "connect" }
  | { kind: "disconnect" }
  | { kind: "send"; events: RealtimeEvent[] }
  | { kind: "mute"; muted: boolean }
  | { kind: "ping" }
  | { kind: "turn"; figures: TurnFigures }
  | { kind: "replay"; events: EventRecord[] }
  | { kind: "play"; id: number; pcm: DataView | null }
  | { kind: "reply"; id: number; ok: true; value: unknown; buffer: DataView | null }
  | { kind: "reply"; id: number; ok: false; error: string };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A binary part of a message as a DataView (ipywidgets hands them over in several forms). */
function view(buffer: unknown): DataView | null {
  if (buffer instanceof DataView) return buffer;
  if (buffer instanceof ArrayBuffer) return new DataView(buffer);
  if (ArrayBuffer.isView(buffer)) return new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  return null;
}

/** The message if it is a well-formed kernel message, else null. `buffers` are the message's
 * binary parts (a recording to play travels as one, never as base64 in JSON). */
export function parseKernelMessage(raw: unknown, buffers: unknown[] = []): KernelMessage | null {
  if (!isObject(raw) || typeof raw.kind !== "string") return null;
  switch (raw.kind) {
    case "play":
      return typeof raw.id === "number" ? { kind: "play", id: raw.id, pcm: view(buffers[0]) } : null;
    case "connect":
    case "disconnect":
    case "ping":
      return { kind: raw.kind };
    case "mute":
      return typeof raw.muted === "boolean" ? { kind: "mute", muted: raw.muted } : null;
    case "send":
      if (!Array.isArray(raw.events)) return null;
      if (!raw.events.every((e) => isObject(e) && typeof e.type === "string")) return null;
      return { kind: "send", events: raw.events as RealtimeEvent[] };
    case "turn": {
      const f = raw.figures;
      if (!isObject(f) || typeof f.response_id !== "string") return null;
      const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);
      return { kind: "turn", figures: { response_id: f.response_id, latency_ms: num(f.latency_ms), cost: num(f.cost) } };
    }
    case "replay": {
      if (!Array.isArray(raw.events)) return null;
      const ok = (r: unknown): boolean =>
        isObject(r) && (r.dir === "in" || r.dir === "out") && typeof r.t === "number" &&
        isObject(r.event) && typeof r.event.type === "string";
      return raw.events.every(ok) ? { kind: "replay", events: raw.events as EventRecord[] } : null;
    }
    case "reply":
      if (typeof raw.id !== "number" || typeof raw.ok !== "boolean") return null;
      return raw.ok
        ? { kind: "reply", id: raw.id, ok: true, value: raw.value, buffer: view(buffers[0]) }
        : { kind: "reply", id: raw.id, ok: false, error: String(raw.error ?? "request failed") };
    default:
      return null;
  }
}

export function isKeyReply(value: unknown): value is KeyReply {
  return isObject(value) && typeof value.secret === "string" && typeof value.calls_url === "string";
}

export function isRelayReply(value: unknown): value is RelayReply {
  return isObject(value) && typeof value.sdp === "string" && typeof value.call_id === "string";
}

/** Milliseconds since the epoch, with sub-millisecond precision. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}
