// The OpenAI Agents SDK for JavaScript, unchanged, against the local server: one realtime
// session with a function tool, over either of its transports. The tests bundle this file for
// Chromium (WebRTC) and for Node (WebSocket) and read the result it reports.

import { OpenAIRealtimeWebRTC, OpenAIRealtimeWebSocket, RealtimeAgent, RealtimeSession, tool } from "@openai/agents-realtime";

export interface Outcome {
  replies: string[];
  toolCalls: string[];
}

const getWeather = tool({
  name: "get_weather",
  description: "The weather in a city.",
  parameters: {
    type: "object",
    properties: { city: { type: "string" } },
    required: ["city"],
    additionalProperties: false,
  },
  strict: true,
  execute: async (input: unknown) => `sunny in ${(input as { city: string }).city}`,
});

/** Connect, ask for the tool, and resolve once the model has said what it returned. */
export async function talk(transport: "webrtc" | "websocket", baseUrl: string, apiKey: string): Promise<Outcome> {
  const agent = new RealtimeAgent({ name: "Assistant", instructions: "Be brief.", tools: [getWeather] });
  const session = new RealtimeSession(agent, {
    model: "gpt-realtime-2",
    transport:
      transport === "webrtc"
        ? new OpenAIRealtimeWebRTC({ baseUrl: `${baseUrl}/realtime/calls` })
        : new OpenAIRealtimeWebSocket({ url: `${baseUrl.replace(/^http/, "ws")}/realtime?model=gpt-realtime-2` }),
    config: { outputModalities: ["text"], audio: { input: { turnDetection: null } } } as never,
  });
  const outcome: Outcome = { replies: [], toolCalls: [] };
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no reply: ${JSON.stringify(outcome)}`)), 15_000);
    session.on("agent_tool_end", (_context, _agent, called) => outcome.toolCalls.push(called.name));
    session.on("error", (error) => reject(new Error(JSON.stringify(error.error))));
    session.on("history_updated", (history) => {
      outcome.replies = history
        .filter((item) => item.type === "message" && item.role === "assistant")
        .flatMap((item) => (item.type === "message" ? item.content : []))
        .map((part) => ("text" in part ? String(part.text ?? "") : "transcript" in part ? String(part.transcript ?? "") : ""))
        .filter(Boolean);
      if (outcome.replies.some((r) => r.includes("The get_weather tool returned"))) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  await session.connect({ apiKey });
  session.sendMessage("call get_weather with city=Paris");
  try {
    await done;
  } finally {
    session.close();
  }
  return outcome;
}

declare const globalThis: { agentsTalk?: typeof talk };
globalThis.agentsTalk = talk;
