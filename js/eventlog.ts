// The call's event history for the views: a bounded list of every data-channel event in both
// directions, kept per widget (not per view) so a view opened later shows what came before.
// Consecutive `*.delta` events of one item are folded into one row (with a count), so the log
// stays readable. No DOM here: ui/log.ts draws it.

import type { Direction, EventRecord } from "./protocol";

export const LOG_LIMIT = 20_000; // records (events), not rows
const FOLD_WINDOW = 200; // a delta folds into its item's row if that row is among the last 200
const OPEN_FOLDS = 256; // at most this many rows stay open for folding

export interface LogRow {
  seq: number; // monotonic, never reused: views keep rows, not indices
  dir: Direction;
  type: string;
  t: number; // the first event's time (ms since the epoch)
  tLast: number;
  itemId: string;
  records: EventRecord[]; // one event, or the folded deltas of one item
  text: string; // the folded deltas' text, joined
}

export interface LogChange {
  added: LogRow[];
  updated: LogRow[]; // rows that folded in another delta
  evicted: number; // rows dropped from the front to stay within the limit
}

const str = (value: unknown): string => (typeof value === "string" ? value : "");

export class EventLog {
  private rows: LogRow[] = [];
  private head = 0; // rows before head are evicted (compacted now and then)
  private nextSeq = 1;
  private count = 0; // records held
  private open = new Map<string, LogRow>();
  readonly types = new Map<string, number>(); // type -> records seen (held or not)
  private listeners = new Set<(change: LogChange) => void>();

  constructor(readonly limit: number = LOG_LIMIT) {}

  /** Rows held, oldest first (a fresh array). */
  list(): LogRow[] {
    return this.rows.slice(this.head);
  }

  get size(): number {
    return this.rows.length - this.head;
  }

  /** Records (events) held. */
  get records(): number {
    return this.count;
  }

  /** The oldest row still held: views drop rows older than this. */
  get firstSeq(): number {
    return this.head < this.rows.length ? this.rows[this.head].seq : this.nextSeq;
  }

  append(record: EventRecord): void {
    const change: LogChange = { added: [], updated: [], evicted: 0 };
    const type = String(record.event.type ?? "");
    this.types.set(type, (this.types.get(type) ?? 0) + 1);
    const itemId = str(record.event.item_id);
    const folds = type.endsWith(".delta") && itemId !== "";
    const key = folds ? `${record.dir}|${type}|${itemId}` : "";
    const row = folds ? this.open.get(key) : undefined;
    if (row && row.seq >= this.firstSeq && row.seq > this.nextSeq - FOLD_WINDOW) {
      row.records.push(record);
      row.tLast = record.t;
      row.text += str(record.event.delta);
      change.updated.push(row);
    } else {
      const added: LogRow = {
        seq: this.nextSeq++,
        dir: record.dir,
        type,
        t: record.t,
        tLast: record.t,
        itemId,
        records: [record],
        text: folds ? str(record.event.delta) : "",
      };
      this.rows.push(added);
      change.added.push(added);
      if (folds) {
        this.open.delete(key);
        this.open.set(key, added);
        if (this.open.size > OPEN_FOLDS) this.open.delete(this.open.keys().next().value as string);
      }
    }
    this.count++;
    while (this.count > this.limit && this.head < this.rows.length) {
      this.count -= this.rows[this.head].records.length;
      this.head++;
      change.evicted++;
    }
    if (this.head > 4096) {
      this.rows = this.rows.slice(this.head);
      this.head = 0;
    }
    this.notify(change);
  }

  /** Listen to changes; returns the unsubscribe function. */
  on(listener: (change: LogChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private notify(change: LogChange): void {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch (error) {
        console.error("realtime-widget: a log view failed", error);
      }
    }
  }
}

/** The events of a row as one JSON value: the event, or the folded deltas as an array. */
export function rowJson(row: LogRow): unknown {
  return row.records.length === 1 ? row.records[0].event : row.records.map((r) => r.event);
}

/** A short description of an event for its log row. */
export function summarize(row: LogRow): string {
  if (row.records.length > 1 || row.text) return row.text;
  const e = row.records[0].event as Record<string, unknown>;
  const parts: string[] = [];
  const error = e.error as Record<string, unknown> | undefined;
  if (error) parts.push(`${str(error.code) || str(error.type)}: ${str(error.message)}`);
  const item = e.item as Record<string, unknown> | undefined;
  if (item) parts.push([str(item.type), str(item.role), str(item.name), str(item.id)].filter(Boolean).join(" "));
  const response = e.response as Record<string, unknown> | undefined;
  if (response) parts.push([str(response.id), str(response.status), str(response.instructions)].filter(Boolean).join(" "));
  for (const field of ["transcript", "text", "arguments", "item_id", "response_id"]) {
    if (typeof e[field] === "string" && e[field]) {
      parts.push(String(e[field]));
      break;
    }
  }
  return parts.join(" · ");
}
