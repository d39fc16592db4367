// The composer's checks as you type: the same JSON Schema the kernel checks with (made from the
// kernel's installed `openai` types by src/realtime_widget/protocol.py, asked for once with the
// "schema" request), interpreted by the same rules, with the same messages and parameter paths.
// tests/test_protocol_parity.py holds the two interpreters to each other over every client
// event type of the SDK. No field is listed here: a new SDK field is known as soon as the kernel
// has it.

/** A problem with an event: the parameter path, and what is wrong, as the API would say it. */
export interface Problem {
  code: string;
  param: string;
  message: string;
}

export type Schema = Record<string, unknown>;
type Node = Record<string, unknown>;

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "boolean") return "a boolean";
  if (typeof value === "number") return Number.isInteger(value) ? "an integer" : "a decimal";
  if (typeof value === "string") return "a string";
  if (Array.isArray(value)) return "an array";
  return "an object";
}

const NAMES: Record<string, string> = {
  string: "a string",
  integer: "an integer",
  number: "a number",
  boolean: "a boolean",
  object: "an object",
  array: "an array",
  null: "null",
};

function typeOk(kind: string, value: unknown): boolean {
  switch (kind) {
    case "string":
      return typeof value === "string";
    case "integer":
      return typeof value === "number" && Number.isInteger(value);
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    case "boolean":
      return typeof value === "boolean";
    case "object":
      return isObject(value);
    case "array":
      return Array.isArray(value);
    case "null":
      return value === null;
    default:
      return true;
  }
}

/** How Python's repr() shows a JSON value, so the messages read the same in both. */
function pyRepr(value: unknown): string {
  if (value === null) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "string") return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
  if (typeof value === "number") return Number.isInteger(value) && !Object.is(value, -0) ? String(value) : pyFloat(value);
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(", ")}]`;
  return `{${Object.entries(value as Record<string, unknown>).map(([k, v]) => `${pyRepr(k)}: ${pyRepr(v)}`).join(", ")}}`;
}

function pyFloat(value: number): string {
  const text = String(value);
  return /[.e]/.test(text) ? text : `${text}.0`;
}

const shown = (value: unknown): string => (typeof value === "string" ? `'${value}'` : pyRepr(value));

function listing(values: unknown[]): string {
  const items = values.map(shown);
  if (items.length <= 1) return items.join("");
  return `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}

/** Python's difflib.SequenceMatcher ratio (the longest-match recursion), for "did you mean". */
function ratio(a: string, b: string): number {
  const matches = (alo: number, ahi: number, blo: number, bhi: number): number => {
    let bestI = alo;
    let bestJ = blo;
    let bestSize = 0;
    let lengths = new Map<number, number>();
    for (let i = alo; i < ahi; i++) {
      const next = new Map<number, number>();
      for (let j = blo; j < bhi; j++) {
        if (a[i] !== b[j]) continue;
        const k = (lengths.get(j - 1) ?? 0) + 1;
        next.set(j, k);
        if (k > bestSize) [bestI, bestJ, bestSize] = [i - k + 1, j - k + 1, k];
      }
      lengths = next;
    }
    if (bestSize === 0) return 0;
    return bestSize + matches(alo, bestI, blo, bestJ) + matches(bestI + bestSize, ahi, bestJ + bestSize, bhi);
  };
  const total = a.length + b.length;
  return total ? (2 * matches(0, a.length, 0, b.length)) / total : 1;
}

function closest(name: string, options: string[]): string {
  let best = "";
  let score = 0.6;
  for (const option of options) {
    const s = ratio(option, name); // difflib compares each possibility (a) to the word (b)
    // As difflib.get_close_matches picks: the best score, ties to the greater name.
    if (s > score || (s === score && option > best)) [best, score] = [option, s];
  }
  return best ? ` Did you mean '${best}'?` : "";
}

/** Own keys only: "constructor" or "toString" in an event is a field like any other. */
const has = (object: object, key: string): boolean => Object.prototype.hasOwnProperty.call(object, key);

const at = (path: string, name: string | number): string =>
  typeof name === "number" ? `${path}[${name}]` : path ? `${path}.${name}` : name;

const problem = (code: string, param: string, message: string): Problem => ({ code, param, message });

export class Checker {
  private readonly defs: Record<string, Node>;
  private readonly roots: Record<string, Node>;
  private readonly consts = new WeakMap<Node, Record<string, unknown>>();
  private readonly unions = new WeakMap<Node, [Node[], Node[], string[]]>();

  constructor(readonly schema: Schema) {
    this.defs = (schema.$defs ?? {}) as Record<string, Node>;
    this.roots = (schema["x-roots"] ?? {}) as Record<string, Node>;
  }

  /** The problem with a value at one of the schema's roots ("client_event", "session"). */
  validate(root: string, value: unknown, path = ""): Problem | null {
    return this.check(this.roots[root], value, path);
  }

  /** The SDK's known values of an open field ("model", "voice", "transcription_model"). */
  suggestions(what: "model" | "voice" | "transcription_model"): string[] {
    const [definition, field] = {
      model: ["RealtimeSessionCreateRequestParam", "model"],
      voice: ["RealtimeAudioConfigOutputParam", "voice"],
      transcription_model: ["AudioTranscriptionParam", "model"],
    }[what];
    const values: string[] = [];
    const collect = (raw: Node): void => {
      const node = this.resolve(raw);
      for (const branch of (node.anyOf as Node[] | undefined) ?? []) collect(branch);
      for (const value of (node.enum as unknown[] | undefined) ?? []) values.push(String(value));
    };
    const node = ((this.defs[definition]?.properties ?? {}) as Record<string, Node>)[field];
    if (node) collect(node);
    return values;
  }

  /** The reasoning efforts the SDK knows (for the Session panel). */
  efforts(): string[] {
    const reasoning = (this.defs.RealtimeReasoningParam?.properties ?? {}) as Record<string, Node>;
    const effort = reasoning.effort;
    const branches = effort ? ((effort.anyOf as Node[] | undefined) ?? [effort]) : [];
    return branches.flatMap((b) => ((this.resolve(b).enum as unknown[] | undefined) ?? []).map(String));
  }

  private resolve(node: Node): Node {
    let current = node;
    for (let i = 0; i < 50 && typeof current.$ref === "string"; i++) {
      current = this.defs[(current.$ref as string).split("/").pop() as string];
    }
    return current;
  }

  private check(raw: Node, value: unknown, path: string): Problem | null {
    const node = this.resolve(raw);
    if (Array.isArray(node.anyOf)) return this.checkAny(node, value, path);
    const kind = node.type;
    if (typeof kind === "string" && !typeOk(kind, value)) {
      const where = path || "body";
      return problem("invalid_type", where, `Invalid type for '${where}': expected ${NAMES[kind] ?? kind}, but got ${kindOf(value)} instead.`);
    }
    if (has(node, "const") && value !== node.const) {
      return problem("invalid_value", path, `Invalid value: ${shown(value)}. Supported values are: ${shown(node.const)}.`);
    }
    if (Array.isArray(node.enum) && (!node.enum.includes(value) || typeof value === "boolean")) {
      const hint = typeof value === "string" ? closest(value, node.enum.map(String)) : "";
      return problem("invalid_value", path, `Invalid value: ${shown(value)}. Supported values are: ${listing(node.enum)}.${hint}`);
    }
    if ((kind === "integer" || kind === "number") && typeof value === "number") {
      const low = node.minimum as number | undefined;
      const high = node.maximum as number | undefined;
      const integer = kind === "integer";
      if (low !== undefined && value < low) {
        return problem(integer ? "integer_below_min_value" : "decimal_below_min_value", path, `Invalid '${path}': expected a value >= ${low}, but got ${value} instead.`);
      }
      if (high !== undefined && value > high) {
        return problem(integer ? "integer_above_max_value" : "decimal_above_max_value", path, `Invalid '${path}': expected a value <= ${high}, but got ${value} instead.`);
      }
    }
    if (Array.isArray(value) && typeof node.maxItems === "number" && value.length > node.maxItems) {
      return problem("array_above_max_length", path, `Invalid '${path}': array too long. Expected an array with maximum length ${node.maxItems}, but got an array with length ${value.length} instead.`);
    }
    if (isObject(value) && (has(node, "properties") || kind === "object")) return this.checkObject(node, value, path);
    if (Array.isArray(value) && isObject(node.items)) {
      for (const [index, element] of value.entries()) {
        const found = this.check(node.items as Node, element, at(path, index));
        if (found) return found;
      }
    }
    return null;
  }

  private checkObject(node: Node, value: Record<string, unknown>, path: string): Problem | null {
    const properties = (node.properties ?? {}) as Record<string, Node>;
    const extra = node.additionalProperties ?? true;
    for (const name of Object.keys(value)) {
      if (!has(properties, name) && extra === false) {
        const where = at(path, name);
        return problem("unknown_parameter", where, `Unknown parameter: '${where}'.${closest(name, Object.keys(properties))}`);
      }
    }
    for (const name of (node.required as string[] | undefined) ?? []) {
      if (!has(value, name)) {
        const where = at(path, name);
        return problem("missing_required_parameter", where, `Missing required parameter: '${where}'.`);
      }
    }
    for (const [name, element] of Object.entries(value)) {
      const sub = has(properties, name) ? properties[name] : isObject(extra) ? (extra as Node) : null;
      if (sub) {
        const found = this.check(sub, element, at(path, name));
        if (found) return found;
      }
    }
    return null;
  }

  private constsOf(node: Node): Record<string, unknown> {
    let found = this.consts.get(node);
    if (!found) {
      found = {};
      for (const [name, raw] of Object.entries((node.properties ?? {}) as Record<string, Node>)) {
        const prop = this.resolve(raw);
        // An optional fixed field is wrapped to allow null: the fixed value is inside.
        const fixed = ((prop.anyOf as Node[] | undefined) ?? [prop]).map((b) => this.resolve(b)).filter((b) => b.type !== "null");
        if (fixed.length === 1 && has(fixed[0], "const")) found[name] = fixed[0].const;
        else if (fixed.length === 1 && Array.isArray(fixed[0].enum) && fixed[0].enum.length === 1) found[name] = fixed[0].enum[0];
      }
      this.consts.set(node, found);
    }
    return found;
  }

  private union(node: Node): [Node[], Node[], string[]] {
    let found = this.unions.get(node);
    if (!found) {
      const resolved = (node.anyOf as Node[]).map((b) => this.resolve(b));
      const objects = resolved.filter((b) => has(b, "properties"));
      const keys: string[] = [];
      for (const branch of objects) for (const key of Object.keys(this.constsOf(branch))) if (!keys.includes(key)) keys.push(key);
      const rank = (k: string) => (k === "type" ? 0 : k === "role" ? 1 : 2);
      keys.sort((a, b) => rank(a) - rank(b)); // stable, as Python's sort
      found = [resolved, objects, keys];
      this.unions.set(node, found);
    }
    return found;
  }

  /** Whether a value is of the kind a schema node describes (before its details). */
  private enters(raw: Node, value: unknown): boolean {
    const node = this.resolve(raw);
    if (Array.isArray(node.anyOf)) return (node.anyOf as Node[]).some((b) => this.enters(b, value));
    if (typeof node.type === "string") return typeOk(node.type, value) || (node.type === "number" && typeOk("integer", value));
    if (has(node, "properties")) return isObject(value);
    return !has(node, "const") && !has(node, "enum");
  }

  private checkAny(node: Node, value: unknown, path: string): Problem | null {
    const [resolved, objects, keys] = this.union(node);
    if (isObject(value) && keys.length) {
      let matching = objects;
      for (const key of keys) {
        const named = matching.filter((b) => has(this.constsOf(b), key));
        if (!named.length) continue;
        if (!has(value, key)) {
          if (named.every((b) => ((b.required as string[] | undefined) ?? []).includes(key))) {
            const where = at(path, key);
            return problem("missing_required_parameter", where, `Missing required parameter: '${where}'.`);
          }
          continue;
        }
        const given = value[key];
        const narrowed = named.filter((b) => JSON.stringify(this.constsOf(b)[key]) === JSON.stringify(given));
        if (!narrowed.length) {
          const options = [...new Set(named.map((b) => this.constsOf(b)[key]))];
          const hint = typeof given === "string" ? closest(given, options.map(String)) : "";
          return problem("invalid_value", at(path, key), `Invalid value: ${shown(given)}. Supported values are: ${listing(options)}.${hint}`);
        }
        matching = narrowed;
      }
      let first: Problem | null = null;
      for (const branch of matching) {
        const found = this.check(branch, value, path);
        if (!found) return null;
        first ??= found;
      }
      return first;
    }
    const errors: Problem[] = [];
    for (const branch of resolved) {
      const found = this.check(branch, value, path);
      if (!found) return null;
      errors.push(found);
    }
    // The branch the value's own type entered explains best (an object's deep mistake, a
    // string's wrong value); only when none did is it a matter of type.
    const entered = errors.filter((_, i) => this.enters(resolved[i], value));
    if (entered.length) return entered[0];
    const kinds: string[] = [];
    for (const branch of resolved) {
      const kind = (branch.type as string | undefined) ?? (has(branch, "properties") ? "object" : undefined);
      if (typeof kind === "string" && !kinds.includes(NAMES[kind] ?? kind)) kinds.push(NAMES[kind] ?? kind);
    }
    const where = path || "body";
    const expected = kinds.length ? kinds.join(" or ") : "another value";
    return problem("invalid_type", where, `Invalid type for '${where}': expected ${expected}, but got ${kindOf(value)} instead.`);
  }
}

/** The composer's text: not JSON, or a client event with its first problem (if any). */
export function checkText(
  text: string,
  checker: Checker | null,
  root: "client_event" | "live_client_event" = "client_event",
): { event: Record<string, unknown> | null; problem: Problem | null } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { event: null, problem: { code: "invalid_json", param: "", message: `Not JSON: ${(error as Error).message}` } };
  }
  if (!isObject(value)) {
    return { event: null, problem: { code: "invalid_type", param: "", message: `A client event is a JSON object with a "type", not ${kindOf(value)}.` } };
  }
  const found = checker ? checker.validate(root, value) : null;
  return found ? { event: null, problem: found } : { event: value, problem: null };
}
