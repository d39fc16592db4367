// How the kernel's per-turn figures and session totals read in the views (see metrics.py).

import type { TurnFigures } from "../protocol";

export interface Totals {
  turns?: number;
  total_tokens?: number;
  cost?: number | null;
  cost_complete?: boolean;
  /** Some turns were priced with figures assumed, not published (see metrics.py). */
  prices_assumed?: boolean;
  /** "openai-equivalent": nothing was charged (the local server); what OpenAI would charge. */
  cost_basis?: string;
  median_latency_ms?: number | null;
}

const num = (value: unknown): number | null =>
  typeof value === "number" && Number.isFinite(value) ? value : null;

export function formatMs(ms: unknown): string {
  const value = num(ms);
  if (value === null) return "";
  return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${Math.round(value)} ms`;
}

export function formatCost(cost: unknown): string {
  const value = num(cost);
  if (value === null) return "";
  return value >= 0.1 ? `$${value.toFixed(2)}` : `$${value.toFixed(4)}`;
}

/** "320 ms · $0.0021": what one turn took the user to hear and what it cost. */
export function turnLine(figures: TurnFigures | undefined): string {
  if (!figures) return "";
  return [formatMs(figures.latency_ms), formatCost(figures.cost)].filter(Boolean).join(" · ");
}

/** "3 turns · 200 tokens · $0.0068 · median 320 ms", or "" before the first turn. */
export function totalsLine(totals: Totals | null | undefined): string {
  if (!totals || !num(totals.turns)) return "";
  const turns = num(totals.turns)!;
  const parts = [`${turns} turn${turns === 1 ? "" : "s"}`];
  const tokens = num(totals.total_tokens);
  if (tokens !== null) parts.push(`${tokens.toLocaleString("en-US")} tokens`);
  const cost = formatCost(totals.cost);
  if (cost) {
    let shown = totals.cost_complete === false ? `≥ ${cost}` : cost;
    if (totals.cost_basis === "openai-equivalent") shown += " if on OpenAI";
    if (totals.prices_assumed) shown += " (assumed prices)";
    parts.push(shown);
  }
  const median = formatMs(totals.median_latency_ms);
  if (median) parts.push(`median ${median}`);
  return parts.join(" · ");
}

