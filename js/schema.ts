// The essential checks of a client event, run in the browser as the composer's text is typed:
// the JSON is an object, its `type` is a GA client event, its own fields are known, the required
// ones present, and the fields people type by hand have the right types and values. A port of
// the parts of src/realtime_widget/schema.py that catch most mistakes, with its messages and
// parameter paths ("session.audio.output.voice"), checked in the same order so the field named
// is the one Python would name.
//
// It is never stricter than Python (tests/frontend/test_composer.py holds it to that): what it
// does not check (tools, turn detection, content parts, formats) it leaves to the kernel, which
// checks every event with the full schema before sending it.

/** A problem with an event: the parameter path, and what is wrong, as the API would say it. */
export interface Problem {
  param: string;
  message: string;
}

type Check = (value: unknown, param: string) => Problem | null;

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

function kind(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "boolean") return "a boolean";
  if (typeof value === "number") return Number.isInteger(value) ? "an integer" : "a decimal";
  if (typeof value === "string") return "a string";
  if (Array.isArray(value)) return "an array";
  return "an object";
}

const repr = (value: unknown): string => (typeof value === "string" ? `'${value}'` : JSON.stringify(value));

const typeError = (param: string, expected: string, value: unknown): Problem => ({
  param,
  message: `Invalid type for '${param}': expected ${expected}, but got ${kind(value)} instead.`,
});

const missing = (param: string): Problem => ({ param, message: `Missing required parameter: '${param}'.` });

const join = (param: string, name: string): string => (param ? `${param}.${name}` : name);

/** Similarity of two names (2 * longest common subsequence / total length), for "did you mean". */
function similarity(a: string, b: string): number {
  const row = new Array<number>(b.length + 1).fill(0);
  for (const ca of a) {
    let previous = 0;
    for (let j = 1; j <= b.length; j++) {
      const kept = row[j];
      row[j] = ca === b[j - 1] ? previous + 1 : Math.max(row[j], row[j - 1]);
      previous = kept;
    }
  }
  return (2 * row[b.length]) / (a.length + b.length || 1);
}

function closest(name: string, options: string[]): string {
  let best = "";
  let score = 0.6;
  for (const option of options) {
    const s = similarity(name, option);
    if (s >= score) [best, score] = [option, s];
  }
  return best ? ` Did you mean '${best}'?` : "";
}

// --- validators, as in schema.py ---------------------------------------------------------------

/** Not checked here: the kernel's full schema checks it. */
const any: Check = () => null;

const string =
  (opts: { nonEmpty?: boolean; maxLength?: number } = {}): Check =>
  (value, param) => {
    if (typeof value !== "string") return typeError(param, "a string", value);
    if (opts.nonEmpty && !value) return { param, message: `'${param}' must not be empty.` };
    if (opts.maxLength !== undefined && value.length > opts.maxLength) {
      return { param, message: `Invalid '${param}': string too long (at most ${opts.maxLength} characters).` };
    }
    return null;
  };

const count =
  (min: number): Check =>
  (value, param) => {
    if (typeof value !== "number" || !Number.isInteger(value)) return typeError(param, "an integer", value);
    return value < min ? { param, message: `Invalid '${param}': expected a value >= ${min}, but got ${value} instead.` } : null;
  };

const oneOf =
  (...values: string[]): Check =>
  (value, param) =>
    typeof value === "string" && values.includes(value)
      ? null
      : { param, message: `Invalid value: ${repr(value)}. Supported values are: ${values.map(repr).join(", ")}.` };

const nullable =
  (inner: Check): Check =>
  (value, param) =>
    value === null ? null : inner(value, param);

const freeObject: Check = (value, param) => (isObject(value) ? null : typeError(param, "an object", value));

const arrayOf =
  (inner: Check): Check =>
  (value, param) => {
    if (!Array.isArray(value)) return typeError(param, "an array", value);
    for (const [i, item] of value.entries()) {
      const problem = inner(item, `${param}[${i}]`);
      if (problem) return problem;
    }
    return null;
  };

/** An object with known fields: unknown ones, then required ones, then each field's value. */
const obj =
  (fields: Record<string, Check>, required: string[] = []): Check =>
  (value, param) => {
    if (!isObject(value)) return typeError(param || "body", "an object", value);
    const names = Object.keys(fields);
    for (const name of Object.keys(value)) {
      if (!(name in fields)) {
        const path = join(param, name);
        return { param: path, message: `Unknown parameter: '${path}'.${closest(name, names)}` };
      }
    }
    for (const name of required) if (!(name in value)) return missing(join(param, name));
    for (const [name, v] of Object.entries(value)) {
      const problem = fields[name](v, join(param, name));
      if (problem) return problem;
    }
    return null;
  };

/** An object whose `tag` field picks its schema. */
const tagged =
  (tag: string, variants: Record<string, Check>): Check =>
  (value, param) => {
    if (!isObject(value)) return typeError(param, "an object", value);
    const path = join(param, tag);
    if (!(tag in value)) return missing(path);
    const chosen = value[tag];
    const names = Object.keys(variants);
    if (typeof chosen !== "string" || !names.includes(chosen)) {
      const hint = typeof chosen === "string" ? closest(chosen, names) : "";
      return { param: path, message: `Invalid value: ${repr(chosen)}. Supported values are: ${names.map(repr).join(", ")}.${hint}` };
    }
    return variants[chosen](value, param);
  };

// --- the session, items, responses -------------------------------------------------------------

const nonEmpty = string({ nonEmpty: true });

export const VOICES = ["alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"];

/** ["audio"] or ["text"] (not both). */
const outputModalities: Check = (value, param) => {
  if (!Array.isArray(value)) return typeError(param, "an array", value);
  if (value.length > 1) return { param, message: `Invalid '${param}': array too long. Expected at most 1 items.` };
  return value.length ? oneOf("audio", "text")(value[0], `${param}[0]`) : null;
};

/** A voice's name or {id}: anything else is an invalid value of the voice itself (as in Python). */
const voice: Check = (value, param) =>
  (typeof value === "string" && VOICES.includes(value)) || (isObject(value) && !obj({ id: nonEmpty }, ["id"])(value, param))
    ? null
    : { param, message: `Invalid value: ${repr(value)}. Supported values are: ${VOICES.map(repr).join(", ")}, or {"id": "voice_…"}.` };

const TRANSCRIPTION_MODELS = [
  "whisper-1",
  "gpt-4o-transcribe",
  "gpt-4o-mini-transcribe",
  "gpt-4o-transcribe-diarize",
  "gpt-realtime-whisper",
  "gpt-live-transcribe",
];

const transcription = nullable(
  obj({
    model: oneOf(...TRANSCRIPTION_MODELS),
    language: string(),
    prompt: string(),
    languages: arrayOf(string()),
    keywords: arrayOf(string()),
    delay: string(),
  }),
);

const audio = obj({
  input: obj({ format: any, transcription, noise_reduction: any, turn_detection: any }),
  output: obj({ format: any, voice, speed: any }),
});

const session = obj(
  {
    type: oneOf("realtime"),
    model: string({ nonEmpty: true }),
    instructions: string(),
    output_modalities: outputModalities,
    audio,
    tools: any,
    tool_choice: any,
    max_output_tokens: any,
    tracing: any,
    truncation: any,
    include: any,
    prompt: any,
    reasoning: any,
    parallel_tool_calls: any,
  },
  ["type"],
);

const ITEM_COMMON: Record<string, Check> = {
  id: string({ nonEmpty: true, maxLength: 32 }),
  object: oneOf("realtime.item"),
  status: oneOf("completed", "incomplete", "in_progress"),
};

const message = (role: string, part: Check): Check =>
  obj({ ...ITEM_COMMON, type: oneOf("message"), role: oneOf(role), content: arrayOf(part) }, ["type", "role", "content"]);

const inputText = obj({ type: oneOf("input_text"), text: string() }, ["type", "text"]);
const userPart = tagged("type", {
  input_text: inputText,
  input_audio: obj({ type: oneOf("input_audio"), audio: string(), transcript: nullable(string()) }, ["type"]),
  input_image: obj({ type: oneOf("input_image"), image_url: string(), detail: oneOf("auto", "low", "high") }, ["type", "image_url"]),
});
// Assistant audio cannot be injected: its transcript is replayed as output_text.
const assistantPart = tagged("type", { output_text: obj({ type: oneOf("output_text"), text: string() }, ["type", "text"]) });

const item = tagged("type", {
  message: tagged("role", {
    user: message("user", userPart),
    system: message("system", tagged("type", { input_text: inputText })),
    assistant: message("assistant", assistantPart),
  }),
  function_call: obj(
    { ...ITEM_COMMON, type: oneOf("function_call"), call_id: string({ nonEmpty: true }), name: string({ nonEmpty: true }), arguments: string() },
    ["type", "name", "arguments"],
  ),
  function_call_output: obj(
    { ...ITEM_COMMON, type: oneOf("function_call_output"), call_id: string({ nonEmpty: true }), output: string() },
    ["type", "call_id", "output"],
  ),
});

const response = obj({
  conversation: string({ nonEmpty: true }), // "auto", "none" or a conversation id
  instructions: string(),
  tools: any,
  tool_choice: any,
  output_modalities: outputModalities,
  audio: obj({ output: obj({ format: any, voice }) }),
  max_output_tokens: any,
  metadata: nullable(freeObject),
  input: arrayOf(any),
  prompt: any,
});

// --- client events -----------------------------------------------------------------------------

const event = (name: string, fields: Record<string, Check> = {}, required: string[] = []): Check =>
  obj({ type: oneOf(name), event_id: string({ maxLength: 512 }), ...fields }, ["type", ...required]);

const CLIENT_EVENTS: Record<string, Check> = {
  "session.update": event("session.update", { session }, ["session"]),
  "input_audio_buffer.append": event("input_audio_buffer.append", { audio: string() }, ["audio"]),
  "input_audio_buffer.commit": event("input_audio_buffer.commit"),
  "input_audio_buffer.clear": event("input_audio_buffer.clear"),
  "conversation.item.create": event("conversation.item.create", { item, previous_item_id: nullable(nonEmpty) }, ["item"]),
  "conversation.item.retrieve": event("conversation.item.retrieve", { item_id: nonEmpty }, ["item_id"]),
  "conversation.item.truncate": event(
    "conversation.item.truncate",
    { item_id: nonEmpty, content_index: count(0), audio_end_ms: count(0) },
    ["item_id", "content_index", "audio_end_ms"],
  ),
  "conversation.item.delete": event("conversation.item.delete", { item_id: nonEmpty }, ["item_id"]),
  "response.create": event("response.create", { response }),
  "response.cancel": event("response.cancel", { response_id: nonEmpty }),
  "output_audio_buffer.clear": event("output_audio_buffer.clear"),
};

/** The client events of the GA Realtime API. */
export const CLIENT_EVENT_TYPES = Object.keys(CLIENT_EVENTS);

/** The first problem with a client event (null: none found here; the kernel checks the rest). */
export function checkClientEvent(value: unknown): Problem | null {
  if (!isObject(value)) return { param: "", message: 'A client event is a JSON object with a "type".' };
  if (!("type" in value)) return { param: "type", message: 'Missing "type" (e.g. "response.create").' };
  const type = value.type;
  if (typeof type !== "string" || !(type in CLIENT_EVENTS)) {
    const hint = typeof type === "string" ? closest(type, CLIENT_EVENT_TYPES) : "";
    return { param: "type", message: `Unknown client event type ${JSON.stringify(type)}.${hint} One of: ${CLIENT_EVENT_TYPES.join(", ")}.` };
  }
  return CLIENT_EVENTS[type](value, "");
}

/** Parse the composer's text and check it: the event, or the problem (param "" for bad JSON). */
export function checkText(text: string): { event: Record<string, unknown> | null; problem: Problem | null } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { event: null, problem: { param: "", message: `Not JSON: ${(error as Error).message}` } };
  }
  const problem = checkClientEvent(value);
  return problem ? { event: null, problem } : { event: value as Record<string, unknown>, problem: null };
}
