// The bridge to the kernel: batches data-channel events into few custom messages, runs
// request/reply exchanges with ids, and dispatches the kernel's messages. No DOM here.

import type { AnyModel } from "@anywidget/types";
import {
  type BrowserMessage,
  type EventRecord,
  type KernelMessage,
  parseKernelMessage,
} from "./protocol";

// A received event after a quiet moment (nothing sent for QUIET_MS) leaves at once, before the
// views draw it: a lone event pays no batching delay. Within a stream, received events leave
// together on the next task, but no sooner than STREAM_GAP_MS after the last message: a flood
// that arrives spread out (as the transport delivers it) would otherwise go a few events to a
// message, and each message costs the kernel a busy/idle pair, the Jupyter server their relay
// and JupyterLab a redraw of its status, all on the cores the flood itself needs (measured: a
// 2,000-event flood sent as 358 messages reached the kernel at 1,200 events/s, as 12-23 at
// 3,500-6,600).
// Echoes of sent events are not urgent and ride along with the next batch, or leave after LAZY_MS:
// long enough that the server's answer usually comes first and both reach the kernel in one
// message (each message from the page costs the kernel a busy/idle pair, and JupyterLab redraws
// its status for each), short enough that Python sees what was sent at once.
const LAZY_MS = 100;
const QUIET_MS = 4;
const STREAM_GAP_MS = 8;
const REQUEST_TIMEOUT_MS = 20_000;

type Pending = { resolve: (value: unknown) => void; reject: (error: Error) => void; timer: number };

export class Bridge {
  private batch: EventRecord[] = [];
  private urgent = false; // a stream's flush is on its way (next task, or after STREAM_GAP_MS)
  private flushTimer: number | null = null;
  private lastPost = -Infinity; // performance.now() of the last events message
  private readonly nextTask = new MessageChannel();
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private listeners = new Set<(msg: KernelMessage) => void>();
  private readonly onCustom = (raw: unknown, buffers?: unknown[]) => this.receive(raw, buffers);

  constructor(private readonly model: AnyModel) {
    model.on("msg:custom", this.onCustom);
    this.nextTask.port1.onmessage = () => this.flush();
  }

  /** Queue one event for the kernel; it leaves with any others that arrive together. */
  event(record: EventRecord): void {
    this.batch.push(record);
    if (record.dir === "in") {
      if (!this.urgent && performance.now() - this.lastPost > QUIET_MS) {
        this.flush(); // alone after a quiet moment: no reason to wait
      } else if (!this.urgent) {
        this.urgent = true;
        const wait = this.lastPost + STREAM_GAP_MS - performance.now();
        if (wait > 0) {
          if (this.flushTimer !== null) window.clearTimeout(this.flushTimer);
          this.flushTimer = window.setTimeout(() => this.flush(), wait);
        } else {
          this.nextTask.port2.postMessage(null); // a macrotask without setTimeout's clamping
        }
      }
    } else if (this.flushTimer === null && !this.urgent) {
      this.flushTimer = window.setTimeout(() => this.flush(), LAZY_MS);
    }
  }

  flush(): void {
    this.urgent = false;
    if (this.flushTimer !== null) {
      window.clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    if (this.batch.length === 0) return;
    const events = this.batch;
    this.batch = [];
    this.lastPost = performance.now();
    this.post({ kind: "events", events });
  }

  /** A message to the kernel; `buffers` travel as the comm's binary parts (recorded audio). */
  post(message: BrowserMessage, buffers?: ArrayBuffer[]): void {
    if (message.kind !== "events") this.flush(); // keep events ahead of what follows them
    try {
      if (buffers?.length) this.model.send(message, undefined, buffers);
      else this.model.send(message);
    } catch (error) {
      // The comm is gone (widget closed, kernel restarted): the call goes on without the kernel.
      console.warn("realtime-widget: could not reach the kernel", error);
    }
  }

  /** Ask the kernel for something (a key, a relayed answer, to check or send a typed event);
   * rejects with its error text. */
  request(op: "key"): Promise<unknown>;
  request(op: "relay", sdp: string): Promise<unknown>;
  request(op: "check" | "send" | "configure", event: Record<string, unknown>): Promise<unknown>;
  request(op: "schema"): Promise<unknown>;
  request(op: "approve", approval: { approval_request_id: string; approve: boolean }): Promise<unknown>;
  /** A turn's recorded audio: resolves with the WAV (the reply's binary buffer). */
  request(op: "clip", turn: { item_id: string }): Promise<unknown>;
  request(
    op: "key" | "relay" | "check" | "send" | "configure" | "schema" | "approve" | "clip",
    arg?: string | Record<string, unknown>,
  ): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = window.setTimeout(() => {
        this.pending.delete(id);
        reject(
          new Error(
            `The kernel did not answer within ${REQUEST_TIMEOUT_MS / 1000} s. ` +
              "Is it busy running a cell, or was it restarted? Re-run the widget's cell.",
          ),
        );
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      if (op === "relay") this.post({ kind: "request", id, op, sdp: typeof arg === "string" ? arg : "" });
      else if (op === "key" || op === "schema") this.post({ kind: "request", id, op });
      else if (op === "approve") {
        const a = (arg ?? {}) as { approval_request_id?: unknown; approve?: unknown };
        this.post({ kind: "request", id, op, approval_request_id: String(a.approval_request_id ?? ""), approve: a.approve === true });
      } else if (op === "clip") {
        const turn = (arg ?? {}) as { item_id?: unknown };
        this.post({ kind: "request", id, op, item_id: String(turn.item_id ?? "") });
      }
      else this.post({ kind: "request", id, op, event: typeof arg === "object" ? arg : {} });
    });
  }

  onMessage(listener: (msg: KernelMessage) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private receive(raw: unknown, buffers: unknown[] = []): void {
    const msg = parseKernelMessage(raw, buffers ?? []);
    if (msg === null) return; // not ours (or malformed): ignore rather than break the call
    if (msg.kind === "reply") {
      const waiting = this.pending.get(msg.id);
      if (!waiting) return;
      this.pending.delete(msg.id);
      window.clearTimeout(waiting.timer);
      if (msg.ok) waiting.resolve(msg.buffer ?? msg.value);
      else waiting.reject(new Error(msg.error));
      return;
    }
    for (const listener of this.listeners) listener(msg);
  }

  dispose(): void {
    this.flush();
    this.nextTask.port1.close();
    this.model.off("msg:custom", this.onCustom);
    for (const [, waiting] of this.pending) {
      window.clearTimeout(waiting.timer);
      waiting.reject(new Error("The widget was closed."));
    }
    this.pending.clear();
    this.listeners.clear();
  }
}
