// OpenAI's browser WebRTC flow, step by step, with hooks on `window.plain` for tests and
// benchmarks: mint a key through this page's server, post the offer to /realtime/calls,
// exchange events on "oai-events", play the model's audio.

const plain = {
  status: "idle",
  error: null,
  callId: null,
  events: [],
  timings: {},
  pc: null,
  channel: null,
  waiters: [],
};
window.plain = plain;

const setStatus = (status, error = null) => {
  plain.status = status;
  plain.error = error;
  document.getElementById("status").textContent = error ? `${status}: ${error}` : status;
};

/** Connect; with `greet`, say "hello" as soon as the channel opens (for time to first audio). */
plain.connect = async function connect(greet = false) {
  setStatus("connecting");
  plain.events = [];
  plain.timings = { start: performance.now() };
  const session = await (await fetch("/session", { method: "POST" })).json();
  if (!session.value) throw new Error(`no client secret: ${JSON.stringify(session)}`);
  const mic = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  });
  const pc = new RTCPeerConnection();
  plain.pc = pc;
  pc.ontrack = (e) => (document.getElementById("remote").srcObject = e.streams[0]);
  pc.addTrack(mic.getTracks()[0], mic);
  const channel = pc.createDataChannel("oai-events");
  plain.channel = channel;
  channel.onmessage = (e) => {
    const event = JSON.parse(e.data);
    event.__t = performance.now();
    if (event.type === "output_audio_buffer.started" && plain.timings.audio === undefined) {
      plain.timings.audio = event.__t; // the call's first audio from the model
    }
    plain.events.push(event);
    plain.waiters = plain.waiters.filter((w) => !w(event));
  };
  const opened = new Promise((resolve) => (channel.onopen = resolve));
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  plain.timings.offer = performance.now();
  const res = await fetch(`${session.base_url}/realtime/calls`, {
    method: "POST",
    body: offer.sdp,
    headers: { Authorization: `Bearer ${session.value}`, "Content-Type": "application/sdp" },
  });
  if (!res.ok) {
    const body = await res.text();
    setStatus("error", `${res.status}: ${body}`);
    return;
  }
  plain.callId = (res.headers.get("Location") || "").split("/").pop();
  await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
  await opened;
  plain.timings.open = performance.now();
  setStatus("connected");
  if (greet) {
    const text = { type: "input_text", text: "hello" };
    plain.send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [text] } });
    plain.send({ type: "response.create" });
  }
};

plain.send = (event) => plain.channel.send(JSON.stringify(event));

/** Resolve with the next event of a type (registered now, before the action). */
plain.next = (type) =>
  new Promise((resolve) => plain.waiters.push((e) => (e.type === type ? (resolve(e), true) : false)));

/** One round trip: a client event the server answers at once (an error for a missing item). */
plain.roundTrip = async () => {
  const answered = plain.next("error");
  const t0 = performance.now();
  plain.send({ type: "conversation.item.retrieve", item_id: "item_missing" });
  await answered;
  return performance.now() - t0;
};

plain.inboundAudio = async () => {
  const out = { energy: 0, packets: 0 };
  (await plain.pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "audio") {
      out.energy += r.totalAudioEnergy || 0;
      out.packets += r.packetsReceived || 0;
    }
  });
  return out;
};

plain.close = () => {
  plain.pc?.getSenders().forEach((s) => s.track?.stop());
  plain.pc?.close();
  setStatus("closed");
};

document.getElementById("connect").onclick = () => plain.connect();
