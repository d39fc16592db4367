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
  | { kind: "events"; events: EventRecord[] }
  | {
      kind: "status";
      status: Exclude<Status, "idle">;
      error: string | null;
      step: Step | null;
      call_id: string | null;
      muted: boolean;
    }
  | { kind: "request"; id: number; op: "key" }
  | { kind: "request"; id: number; op: "relay"; sdp: string };

export interface KeyReply {
  secret: string;
  calls_url: string;
  expires_at: number;
}
export interface RelayReply {
  sdp: string;
  call_id: string;
}

export type KernelMessage =
  | { kind: "connect" }
  | { kind: "disconnect" }
  | { kind: "send"; events: RealtimeEvent[] }
  | { kind: "mute"; muted: boolean }
  | { kind: "reply"; id: number; ok: true; value: unknown }
  | { kind: "reply"; id: number; ok: false; error: string };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The message if it is a well-formed kernel message, else null. */
export function parseKernelMessage(raw: unknown): KernelMessage | null {
  if (!isObject(raw) || typeof raw.kind !== "string") return null;
  switch (raw.kind) {
    case "connect":
    case "disconnect":
      return { kind: raw.kind };
    case "mute":
      return typeof raw.muted === "boolean" ? { kind: "mute", muted: raw.muted } : null;
    case "send":
      if (!Array.isArray(raw.events)) return null;
      if (!raw.events.every((e) => isObject(e) && typeof e.type === "string")) return null;
      return { kind: "send", events: raw.events as RealtimeEvent[] };
    case "reply":
      if (typeof raw.id !== "number" || typeof raw.ok !== "boolean") return null;
      return raw.ok
        ? { kind: "reply", id: raw.id, ok: true, value: raw.value }
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
