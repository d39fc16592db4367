// The Call: one per widget model. Microphone, RTCPeerConnection, the "oai-events" data channel,
// the SDP exchange (ephemeral key or kernel relay) and the model's audio. It never touches the
// DOM except its own hidden <audio> element; views listen to it.

import type { AnyModel } from "@anywidget/types";
import type { Bridge } from "./bridge";
import { Checker, type Schema } from "./checks";
import { Emitter } from "./emitter";
import { EventLog } from "./eventlog";
import { Meters } from "./meter";
import { Recorder } from "./recorder";
import {
  type EventRecord,
  isKeyReply,
  isRelayReply,
  type RealtimeEvent,
  type Status,
  type Step,
  type TurnFigures,
  now,
} from "./protocol";
import { TranscriptModel } from "./transcript";

const OPEN_TIMEOUT_MS = 15_000;
const KERNEL_CHECK_MS = 5_000; // a live kernel answers a hello within this
const DROP_GRACE_MS = 8_000; // media lost this long mid-call (after Chromium's ~5 s): the call ended
const PAGE_GONE = "The page that held the call was reloaded or closed, so the call ended. Connect again, or run w.reconnect() to continue the conversation.";
// session_expired, then the server closes: whichever way the close shows, say why.
const EXPIRED = "The session reached the provider's time limit (session_expired). Run w.reconnect() to continue the conversation in a new session, or Connect to start afresh.";
const DROPPED = `The connection to the server dropped (no media for ${DROP_GRACE_MS / 1000} s), so the call ended. Check the network, then connect again (w.reconnect() continues the conversation).`;
// GPT-Live takes no trickled candidates: the offer carries them all. With no STUN or TURN
// server configured every candidate is a host candidate, and Chromium finds them all within a few
// milliseconds, then holds "complete" back for ~120 ms more (its TCP-candidate timer, measured in
// benchmarks/bench_widget.py): the offer goes once candidates have stopped coming for
// GATHER_QUIET_MS, or at "complete", and never later than GATHER_LIMIT_MS.
const GATHER_QUIET_MS = 40;
const GATHER_LIMIT_MS = 3_000;
// A Live hang-up is graceful: session.close, then session.closed (with the final usage) within
// this, and only then the peer closes.
const CLOSE_GRACE_MS = 5_000;
const LIVE_CLOSED: Record<string, string> = {
  expired: "The session reached GPT-Live's time limit (expired). Run w.reconnect() to go on in a new session with the conversation so far.",
  content: "GPT-Live ended the session: its safety filter stopped it (content).",
  remote_hangup: "The other side hung up.",
  connection_lost: "The connection to GPT-Live was lost. Run w.reconnect() to go on.",
};
const MIC_CONSTRAINTS: MediaStreamConstraints = {
  audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
};

export interface CallState {
  status: Status;
  error: string | null;
  step: Step | null;
  callId: string | null;
  muted: boolean;
  /** Why this call has no microphone (denied, absent): it runs text only. Null when it has one. */
  micError: string | null;
}

type CallEvents = { state: CallState; event: EventRecord; transcript: null };

class StepError extends Error {
  constructor(
    readonly step: Step,
    message: string,
  ) {
    super(message);
  }
}

function stopTracks(stream: MediaStream): void {
  for (const track of stream.getTracks()) track.stop();
}

const clamp = (volume: number): number => (Number.isFinite(volume) ? Math.min(1, Math.max(0, volume)) : 1);

/** The session.update that sets turn detection (null: off). */
function detectionUpdate(turnDetection: Record<string, unknown> | null): RealtimeEvent {
  return { type: "session.update", session: { type: "realtime", audio: { input: { turn_detection: turnDetection } } } };
}

declare global {
  interface Window {
    __rtw_calls?: Set<Call>;
  }
}

/** Resolves once the offer has its candidates (see GATHER_QUIET_MS), with what it has. */
function gathered(pc: RTCPeerConnection, quiet: number, limit: number): Promise<void> {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    let settle: number | null = null;
    const done = () => {
      window.clearTimeout(bound);
      if (settle !== null) window.clearTimeout(settle);
      pc.removeEventListener("icegatheringstatechange", check);
      pc.removeEventListener("icecandidate", candidate);
      resolve();
    };
    const check = () => pc.iceGatheringState === "complete" && done();
    const candidate = (e: RTCPeerConnectionIceEvent) => {
      if (e.candidate === null) return done(); // gathering ended (sometimes before the state)
      if (settle !== null) window.clearTimeout(settle);
      settle = window.setTimeout(done, quiet);
    };
    const bound = window.setTimeout(done, limit);
    pc.addEventListener("icegatheringstatechange", check);
    pc.addEventListener("icecandidate", candidate);
  });
}

export class Call extends Emitter<CallEvents> {
  state: CallState = { status: "idle", error: null, step: null, callId: null, muted: false, micError: null };
  readonly transcript = new TranscriptModel();
  /** Every event of this widget's calls, both directions, bounded: views show its history. */
  readonly log = new EventLog();
  /** Input (microphone) and output (the model's voice) levels, for the meters. */
  readonly meters = new Meters();
  /** Output volume in [0, 1], kept across calls (the synced `volume` trait). */
  volume = 1;
  /** Push-to-talk: the microphone is live only while held, and turn detection is off (the
   * synced `push_to_talk` trait). */
  pushToTalk = false;
  private talking = false;
  /** The turn detection push-to-talk switched off, given back when it ends. */
  private resumeDetection: Record<string, unknown> | null = { type: "server_vad" };
  private responding = false;
  private playing = false;
  /** The microphone chosen in a view (a device id) for this call and the next; "" the default. */
  micChoice = "";
  private offModel: () => void;
  private switching: Promise<void> = Promise.resolve();
  /** The server's session (from session.created / session.updated), for the Session panel. */
  session: Record<string, unknown> | null = null;
  /** The model has spoken in this session: the API no longer lets the voice change. */
  audioSeen = false;
  private expired = false;
  private kernelCheck: number | null = null;
  private pc: RTCPeerConnection | null = null;
  private channel: RTCDataChannel | null = null;
  private mic: MediaStream | null = null;
  private audio: HTMLAudioElement | null = null;
  /** Both sides of the call, for the kernel (the `record` trait, read when a call starts). */
  private recorder: Recorder | null = null;
  /** A call of this widget was recorded: its spoken turns can be played. */
  recorded = false;
  private outbox: RealtimeEvent[] = [];
  private posting: AbortController | null = null;
  private dropTimer: number | null = null;
  private attempt = 0; // bumps on every start/stop so stale async steps know to give up
  /** GPT-Live (a `gpt-live-*` model): relayed offer, no trickle, session.started, graceful close. */
  live = false;
  private started: (() => void) | null = null; // GPT-Live: the call is up at session.started
  private closing: number | null = null; // GPT-Live: session.close sent, session.closed awaited
  private closeReason: string | null = null;
  timings: Record<string, number> = {};

  constructor(
    private readonly model: AnyModel,
    private readonly bridge: Bridge,
  ) {
    super();
    (window.__rtw_calls ??= new Set()).add(this);
    // The page is going (closed, reloaded, navigated away): end the call and tell the kernel
    // while the comm still carries it. Nothing else would: the kernel is not told a tab closed.
    window.addEventListener("pagehide", this.onPageHide);
    // push_to_talk and volume are synced traits: Python and every view set them on the model,
    // and the call follows the model.
    this.pushToTalk = model.get("push_to_talk") === true;
    this.volume = clamp(Number(model.get("volume") ?? 1));
    const onPushToTalk = () => this.setPushToTalk(model.get("push_to_talk") === true);
    const onVolume = () => this.setVolume(Number(model.get("volume") ?? 1));
    model.on("change:push_to_talk", onPushToTalk);
    model.on("change:volume", onVolume);
    this.offModel = () => {
      model.off("change:push_to_talk", onPushToTalk);
      model.off("change:volume", onVolume);
    };
  }

  /** A typed event, checked or sent by the kernel by the rules of widget.send() (the composer). */
  compose(op: "check" | "send", event: Record<string, unknown>): Promise<unknown> {
    return this.bridge.request(op, event);
  }

  /** Answer an MCP server's approval request (the kernel sends it, as widget.approve does). */
  approve(requestId: string, approve: boolean): Promise<unknown> {
    return this.bridge.request("approve", { approval_request_id: requestId, approve });
  }

  /** Change the config the next call starts with (outside a call: widget.update_session). */
  configure(session: Record<string, unknown>): Promise<unknown> {
    return this.bridge.request("configure", session);
  }

  private checking: Promise<Checker | null> | null = null;
  /** The kernel's schema (from its installed `openai` types), asked for once and kept; null
   * while the kernel can't answer (a busy cell), in which case it is asked again next time. */
  checker(): Promise<Checker | null> {
    this.checking ??= this.bridge.request("schema").then(
      (schema) => new Checker(schema as Schema),
      () => {
        this.checking = null;
        return null;
      },
    );
    return this.checking;
  }

  /** The kernel asks whether this page holds the live call: say so by reporting its state. */
  answerPing(): void {
    if (this.kernelCheck !== null) window.clearTimeout(this.kernelCheck);
    this.kernelCheck = null;
    if (this.state.status === "connecting" || this.state.status === "connected") this.setState({});
  }

  /** The widget's link to the kernel changed (a restart, a lost connection): is our kernel
   * still there? It answers a hello with a ping while it has a live call; a restarted kernel has
   * no widget and stays silent, and a call whose events go nowhere must end. */
  checkKernel(): void {
    if (this.state.status !== "connecting" && this.state.status !== "connected") return;
    if (this.kernelCheck !== null) window.clearTimeout(this.kernelCheck);
    this.bridge.post({ kind: "hello" });
    this.kernelCheck = window.setTimeout(() => {
      this.kernelCheck = null;
      this.stop("The kernel restarted or its connection closed, so the call ended (its events had nowhere to go). Re-run the widget's cell to connect again.");
    }, KERNEL_CHECK_MS);
  }

  /** The kernel measured a response: the transcript shows its latency and cost. */
  turnFigures(figures: TurnFigures): void {
    this.transcript.setFigures(figures);
    this.emit("transcript", null);
  }

  get micTrack(): MediaStreamTrack | null {
    return this.mic?.getAudioTracks()[0] ?? null;
  }

  /** Start the call; resolves once connected or failed (the state says which). */
  async start(): Promise<void> {
    if (this.state.status === "connecting" || this.state.status === "connected") return;
    const attempt = ++this.attempt;
    const session = this.model.get("session") as Record<string, unknown> | null;
    this.live = typeof session?.model === "string" && session.model.startsWith("gpt-live");
    this.closeReason = null;
    // GPT-Live has no client secrets: the kernel always posts the offer.
    const mode = this.live || this.model.get("mode") === "relay" ? "relay" : "ephemeral";
    this.timings = { start: now() };
    this.outbox = [];
    this.session = null;
    this.audioSeen = false;
    this.responding = this.playing = false;
    this.expired = false;
    this.setState({ status: "connecting", error: null, step: null, callId: null, micError: null });
    if (this.pushToTalk && !this.live) this.outbox.push(detectionUpdate(null)); // sent once the channel opens
    // The key is minted while the microphone opens: the two waits overlap.
    const key = mode === "ephemeral" ? this.bridge.request("key") : null;
    // A refused key fails the call at once, even while the microphone prompt is still open.
    key?.catch((error: Error) => this.fail(attempt, "key", error.message));
    try {
      const mic = await this.openMicrophone();
      if (this.attempt !== attempt) {
        if (mic) stopTracks(mic); // stopped or failed while the microphone opened: release it again
        return;
      }
      this.mic = mic;
      for (const track of mic?.getAudioTracks() ?? []) track.enabled = this.micLive();
      this.meters.attach("input", mic);
      if (this.model.get("record") === true) this.startRecording();
      const pc = new RTCPeerConnection();
      this.pc = pc;
      this.audio = document.createElement("audio");
      this.audio.autoplay = true;
      this.audio.style.display = "none";
      this.audio.dataset.rtw = "remote-audio";
      document.body.appendChild(this.audio);
      this.audio.volume = this.volume;
      pc.ontrack = (e) => {
        const stream = e.streams[0] ?? new MediaStream([e.track]);
        if (this.audio) this.audio.srcObject = stream;
        this.meters.attach("output", stream);
        this.recorder?.output(stream);
      };
      if (this.mic) for (const track of this.mic.getAudioTracks()) pc.addTrack(track, this.mic);
      // Without a microphone the call is text in, voice out: still ask for the model's audio.
      // sendrecv with no track: nothing is sent, but w.play() can put a recording on it.
      else pc.addTransceiver("audio", { direction: "sendrecv" });
      const opened = this.openChannel(pc, attempt, mode);
      // Its timer fails the call itself; a rejection nobody awaits yet must not reach the page.
      opened.catch(() => undefined);
      // Media lost mid-call (a dropped network, a server gone silent): Chromium says
      // "disconnected" after about 5 s and may never reach ICE "failed" (only the connection
      // does, later), so a call must not wait for it: a grace period, then it ends with a reason.
      const watch = () => {
        if (this.attempt !== attempt) return;
        const failed = pc.iceConnectionState === "failed" || pc.connectionState === "failed";
        const lost = failed || pc.iceConnectionState === "disconnected" || pc.connectionState === "disconnected";
        if (!lost) {
          if (this.dropTimer !== null) window.clearTimeout(this.dropTimer);
          this.dropTimer = null;
        } else if (this.state.status !== "connected") {
          if (failed) this.fail(attempt, "ice", "The network connection (ICE) failed: the server could not be reached for media. Check firewalls/VPNs, then connect again.");
        } else if (failed) {
          this.end(this.expired ? EXPIRED : DROPPED);
        } else {
          this.dropTimer ??= window.setTimeout(() => {
            this.dropTimer = null;
            if (this.attempt === attempt) this.end(this.expired ? EXPIRED : DROPPED);
          }, DROP_GRACE_MS);
        }
      };
      pc.oniceconnectionstatechange = watch;
      pc.onconnectionstatechange = watch;
      const offer = await pc.createOffer();
      // Listening before the description is set: the first candidates come right after it.
      const gathering = this.live ? gathered(pc, GATHER_QUIET_MS, GATHER_LIMIT_MS) : null;
      await pc.setLocalDescription(offer);
      this.timings.described = now();
      await gathering;
      this.timings.offer = now();
      this.check(attempt);
      const sdp = this.live ? (pc.localDescription?.sdp ?? "") : (offer.sdp ?? "");
      const answer = mode === "relay" ? await this.relay(sdp) : await this.post(key!, sdp);
      this.check(attempt);
      this.timings.answer = now();
      await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
      this.setState({ callId: answer.callId });
      await opened;
    } catch (error) {
      if (this.attempt !== attempt) return; // stopped meanwhile: nothing to report
      if (error instanceof StepError) this.fail(attempt, error.step, error.message);
      else this.fail(attempt, "sdp", `Setting up the call failed: ${String(error)}`);
    }
  }

  private check(attempt: number): void {
    if (this.attempt !== attempt) throw new Error("superseded");
  }

  /** The microphone, or null (and micError saying why) when the call must go on text only. */
  private async openMicrophone(): Promise<MediaStream | null> {
    if (!navigator.mediaDevices?.getUserMedia) {
      this.setState({ micError: "This page cannot use a microphone (it needs https or localhost, and a front end that allows it; VS Code's notebooks do not)." });
      return null;
    }
    try {
      if (this.micChoice) {
        // The microphone chosen in a view ("ideal" is not enough: Chromium opens the default).
        const audio = { ...(MIC_CONSTRAINTS.audio as MediaTrackConstraints), deviceId: { exact: this.micChoice } };
        const mic = await navigator.mediaDevices.getUserMedia({ audio }).catch((error: DOMException) => {
          if (error.name === "OverconstrainedError" || error.name === "NotFoundError") return null; // gone
          throw error;
        });
        if (mic) return mic;
      }
      return await navigator.mediaDevices.getUserMedia(MIC_CONSTRAINTS);
    } catch (error) {
      const name = (error as DOMException).name;
      const advice =
        name === "NotAllowedError"
          ? "Microphone access was denied: allow it in the browser's site settings, then connect again to talk."
          : name === "NotFoundError"
            ? "No microphone was found: plug one in (or choose one in the system settings), then connect again to talk."
            : `The microphone could not be opened (${name}): close other apps using it, then connect again to talk.`;
      this.setState({ micError: advice });
      return null;
    }
  }

  private openChannel(pc: RTCPeerConnection, attempt: number, mode: "relay" | "ephemeral"): Promise<void> {
    const channel = pc.createDataChannel("oai-events");
    this.channel = channel;
    channel.onmessage = (e) => {
      let event: RealtimeEvent;
      try {
        event = JSON.parse(String(e.data));
      } catch {
        return; // not JSON: nothing a view or the kernel could use
      }
      this.record("in", event);
    };
    return new Promise((resolve, reject) => {
      // One bound on the whole setup, whichever step hangs (a kernel that never hands over the
      // key, a server that never answers the offer, ICE that never completes): fail at once,
      // naming that step, rather than when (or if) the awaited step gives up.
      const timer = window.setTimeout(() => {
        const s = OPEN_TIMEOUT_MS / 1000;
        const error =
          this.timings.answer !== undefined
            ? new StepError("ice", `No connection to the server within ${s} s (ICE did not complete). Check the network (firewalls, VPNs), then connect again.`)
            : mode === "ephemeral" && this.timings.key === undefined
              ? new StepError("key", `The kernel did not hand over a key within ${s} s. Is it busy running a cell, or was it restarted? Then connect again.`)
              : mode === "relay"
                ? new StepError("sdp", `No answer to the call's offer within ${s} s: the kernel relays it, so is the kernel busy running a cell, or the endpoint unreachable from it? Then connect again.`)
                : new StepError("sdp", `The server did not answer the call's offer within ${s} s. Check the endpoint and the network, then connect again.`);
        this.fail(attempt, error.step, error.message);
        reject(error);
      }, OPEN_TIMEOUT_MS);
      const up = () => {
        window.clearTimeout(timer);
        this.started = null;
        if (this.attempt !== attempt) return;
        this.timings.up = now();
        this.setState({ status: "connected", error: null, step: null });
        const queued = this.outbox;
        this.outbox = [];
        this.send(queued);
        resolve();
      };
      channel.onopen = () => {
        if (this.attempt !== attempt) return;
        this.timings.open = now();
        // GPT-Live takes no command before session.started: the call is up when it comes.
        if (this.live) this.started = up;
        else up();
      };
      channel.onclose = () => {
        window.clearTimeout(timer);
        if (this.attempt !== attempt) return;
        if (this.state.status === "connected" && this.live) {
          this.end(this.closeReason);
        } else if (this.state.status === "connected" && this.expired) {
          this.end(EXPIRED);
        } else if (this.state.status === "connected") {
          this.end("The call ended: the server closed the data channel (hang-up, session limit or a dropped connection).");
        } else {
          reject(new StepError("channel", "The data channel closed before the call was set up."));
        }
      };
    });
  }

  private async post(key: Promise<unknown>, sdp: string): Promise<{ sdp: string; callId: string | null }> {
    let secret: unknown;
    try {
      secret = await key;
    } catch (error) {
      throw new StepError("key", (error as Error).message);
    }
    if (!isKeyReply(secret)) throw new StepError("key", "The kernel's key reply was malformed.");
    this.timings.key = now();
    let res: Response;
    try {
      // Aborted when the call stops or fails (a server that never answers must not hold on).
      this.posting = new AbortController();
      res = await fetch(secret.calls_url, {
        method: "POST",
        body: sdp,
        signal: this.posting.signal,
        headers: { Authorization: `Bearer ${secret.secret}`, "Content-Type": "application/sdp" },
      });
    } catch (error) {
      throw new StepError("sdp", `Could not reach ${secret.calls_url} from the browser (${String(error)}). Check the network, or use mode="relay" to let the kernel post the offer.`);
    }
    const text = await res.text();
    if (!res.ok) {
      let message = text.slice(0, 300);
      try {
        message = JSON.parse(text).error?.message ?? message;
      } catch {
        // not JSON: keep the text
      }
      // A 401 here is the client secret (expired, or minted for another endpoint): a fresh one helps.
      const advice = res.status === 401 ? " Connect again: the kernel mints a fresh key for each call." : "";
      throw new StepError("sdp", `The server refused the SDP offer (${res.status}): ${message}${advice}`);
    }
    const location = res.headers.get("Location") ?? "";
    return { sdp: text, callId: location ? location.split("/").filter(Boolean).pop() ?? null : null };
  }

  private async relay(sdp: string): Promise<{ sdp: string; callId: string | null }> {
    let reply: unknown;
    try {
      reply = await this.bridge.request("relay", sdp);
    } catch (error) {
      throw new StepError("sdp", (error as Error).message);
    }
    if (!isRelayReply(reply)) throw new StepError("sdp", "The kernel's relay reply was malformed.");
    return { sdp: reply.sdp, callId: reply.call_id || null };
  }

  /** Send client events on the data channel (queued while connecting). */
  send(events: RealtimeEvent[]): void {
    for (const event of events) {
      if (this.channel?.readyState === "open" && (this.state.status === "connected" || !this.live)) {
        try {
          this.channel.send(JSON.stringify(event));
        } catch (error) {
          // Too large for the channel (the kernel checks sizes first) or closing: the event is
          // not sent, and the ones after it still are.
          console.warn(`realtime-widget: could not send a ${event.type} event`, error);
          continue;
        }
        this.record("out", event);
      } else if (this.state.status === "connecting") {
        this.outbox.push(event);
      } else {
        console.warn(`realtime-widget: not connected, dropped a ${event.type} event`);
      }
    }
  }

  private follow(event: RealtimeEvent): void {
    const e = event as Record<string, unknown>;
    if (event.type === "response.created") this.responding = true;
    else if (event.type === "response.done") this.responding = false;
    else if (event.type === "output_audio_buffer.started") this.playing = true;
    else if (event.type === "output_audio_buffer.stopped" || event.type === "output_audio_buffer.cleared") this.playing = false;
    if ((event.type === "session.created" || event.type === "session.updated" || event.type === "session.started") && typeof e.session === "object" && e.session) {
      this.session = e.session as Record<string, unknown>;
      if (event.type === "session.started") this.started?.();
    } else if (event.type === "session.closed") {
      const reason = typeof e.reason === "string" ? e.reason : "";
      this.closeReason = LIVE_CLOSED[reason] ?? null;
      if (this.closing !== null) this.end(this.closeReason);
    } else if (event.type === "output_audio_buffer.started" || event.type === "response.output_audio.delta" || event.type === "session.output_transcript.delta") {
      if (!this.audioSeen) this.timings.audio = now(); // the call's first audio from the model
      this.audioSeen = true;
    } else if (event.type === "error" && (e.error as Record<string, unknown> | undefined)?.code === "session_expired") {
      this.expired = true; // the server closes next: say why, not just "closed"
    }
  }

  private record(dir: "in" | "out", event: RealtimeEvent): void {
    const record: EventRecord = { dir, t: now(), event };
    this.bridge.event(record);
    this.show(record);
  }

  /** A saved session's events, drawn as if they happened here (the kernel has them already:
   * nothing goes back to it, and nothing is sent to any server). */
  replay(records: EventRecord[]): void {
    for (const record of records) this.show(record);
  }

  private show(record: EventRecord): void {
    const { dir, event } = record;
    this.log.append(record);
    if (dir === "in") this.follow(event);
    // A GPT-Live tool's output has no server echo: the transcript takes it as it is sent.
    const shown = dir === "in" || event.type === "response.item.create";
    if (shown && this.transcript.apply(event)) this.emit("transcript", null);
    this.emit("event", record);
  }

  setMuted(muted: boolean): void {
    this.setState({ muted });
    this.applyMic();
  }

  /** Is the microphone sending? Not muted, and held down in push-to-talk mode. */
  private micLive(): boolean {
    return !this.state.muted && (!this.pushToTalk || this.talking);
  }

  private applyMic(): void {
    for (const track of this.mic?.getAudioTracks() ?? []) track.enabled = this.micLive();
  }

  setVolume(volume: number): void {
    this.volume = clamp(volume);
    if (this.audio) this.audio.volume = this.volume;
    this.emit("state", this.state);
  }

  /** A response is in progress or the model's voice still plays: Interrupt has something to stop. */
  get answering(): boolean {
    // GPT-Live has no response to cancel: it stops when talked over.
    return this.state.status === "connected" && !this.live && (this.responding || this.playing);
  }

  /** Stop the model: cancel its response and drop the audio queued to play (as widget.interrupt). */
  interrupt(): void {
    this.send([{ type: "response.cancel" }, { type: "output_audio_buffer.clear" }]);
  }

  /** A view's choice of volume: the synced trait changes (Python sees it on `save`, the end of
   * a slider's drag) and the call follows it. */
  chooseVolume(volume: number, save: boolean): void {
    this.model.set("volume", clamp(volume));
    if (save) this.model.save_changes();
  }

  /** A view's push-to-talk switch: the synced trait changes, and the call follows it. */
  choosePushToTalk(on: boolean): void {
    this.model.set("push_to_talk", on);
    this.model.save_changes();
  }

  /** Turn push-to-talk on (turn detection off, the microphone live only while held) or off
   * (back to the turn detection it replaced). Follows the `push_to_talk` trait. */
  setPushToTalk(on: boolean): void {
    if (on === this.pushToTalk) return;
    if (on) {
      const input = (this.session?.audio as { input?: Record<string, unknown> } | undefined)?.input;
      if (input && "turn_detection" in input) this.resumeDetection = input.turn_detection as Record<string, unknown> | null;
    }
    this.pushToTalk = on;
    this.talking = false;
    this.applyMic();
    if ((this.state.status === "connected" || this.state.status === "connecting") && !this.live) {
      this.send([detectionUpdate(on ? null : this.resumeDetection)]);
    }
    this.emit("state", this.state);
  }

  /** Push-to-talk held (true) or released (false): on release the turn is committed and answered. */
  talk(down: boolean): void {
    if (!this.pushToTalk || this.talking === down || this.state.status !== "connected") return;
    if (down && (this.state.muted || !this.mic)) return; // nothing would be heard: an empty commit
    this.talking = down;
    this.applyMic();
    // GPT-Live hears what the held microphone sends and decides itself when to answer.
    if (this.live) {
      // nothing to commit
    } else if (!down) this.send([{ type: "input_audio_buffer.commit" }, { type: "response.create" }]);
    else this.send([{ type: "input_audio_buffer.clear" }]); // a fresh turn: nothing said before
    this.emit("state", this.state);
  }

  /** The microphone in use (its device id), for the picker. */
  get micDeviceId(): string {
    return this.micTrack?.getSettings().deviceId ?? "";
  }

  /** Switch microphones mid-call: the sender's track is replaced, the old one released.
   * Switches run one after another, so the last choice wins. */
  switchMicrophone(deviceId: string): Promise<void> {
    this.micChoice = deviceId; // and the next call's
    this.switching = this.switching.then(() => this.replaceMicrophone(deviceId)).catch((error) => {
      console.warn("realtime-widget: could not switch microphones", error);
    });
    return this.switching;
  }

  private async replaceMicrophone(deviceId: string): Promise<void> {
    if (!this.mic || !this.pc) return;
    const mic = await navigator.mediaDevices.getUserMedia({
      audio: { ...(MIC_CONSTRAINTS.audio as MediaTrackConstraints), deviceId: { exact: deviceId } },
    });
    const track = mic.getAudioTracks()[0];
    const sender = this.pc.getSenders().find((s) => s.track?.kind === "audio");
    if (!track || !sender || !this.mic) {
      stopTracks(mic);
      return;
    }
    await sender.replaceTrack(track);
    stopTracks(this.mic);
    this.mic = mic;
    this.applyMic();
    this.meters.attach("input", mic);
    this.recorder?.input(track);
    this.emit("state", this.state);
  }

  /** Speak a recording into the call (24 kHz mono PCM16, from w.play): its track stands in
   * for the microphone's while it plays, then the microphone's is put back. Tells the kernel
   * when it has been sent. */
  async play(id: number, pcm: DataView | null): Promise<void> {
    const reply = (ok: boolean, error?: string) =>
      this.bridge.post(error ? { kind: "played", id, ok, error } : { kind: "played", id, ok });
    const sender = this.pc?.getSenders().find((s) => s.track === null || s.track.kind === "audio");
    if (this.state.status !== "connected" || !sender) return reply(false, "The call is not connected.");
    if (!pcm || pcm.byteLength < 2) return reply(false, "The recording is empty.");
    const context = new AudioContext({ sampleRate: 24_000 });
    try {
      const samples = Math.floor(pcm.byteLength / 2);
      const buffer = context.createBuffer(1, samples, 24_000);
      const channel = buffer.getChannelData(0);
      for (let i = 0; i < samples; i++) channel[i] = pcm.getInt16(i * 2, true) / 32768;
      const source = context.createBufferSource();
      source.buffer = buffer;
      const out = context.createMediaStreamDestination();
      source.connect(out);
      const mic = sender.track;
      const played = out.stream.getAudioTracks()[0] ?? null;
      await sender.replaceTrack(played);
      this.recorder?.input(played);
      const ended = new Promise((resolve) => (source.onended = resolve));
      source.start();
      await ended;
      if (this.pc && this.pc.getSenders().includes(sender)) {
        await sender.replaceTrack(mic);
        this.recorder?.input(mic);
      }
      reply(true);
    } catch (error) {
      reply(false, `Could not play the recording: ${(error as Error).message}`);
    } finally {
      void context.close();
    }
  }

  /** Record this call for the kernel: a chunk at a time, as binary buffers. A browser that
   * cannot (no AudioWorklet) still makes the call, and the kernel says nothing was recorded. */
  private startRecording(): void {
    const recorder = new Recorder((t0, frame, pcm) => this.bridge.post({ kind: "audio", t0, frame }, [pcm]));
    recorder.started.catch((error: Error) => {
      if (this.recorder === recorder) this.recorder = null;
      this.bridge.post({ kind: "unrecorded", error: `This page cannot record the call (${error.message}). Recording needs Web Audio's AudioWorklet, which browsers give pages served over https or from localhost.` });
    });
    recorder.input(this.micTrack);
    this.recorder = recorder;
    this.recorded = true;
  }

  /** Play a turn's recorded audio (the kernel cuts it from the call's recording). */
  async playTurn(itemId: string): Promise<HTMLAudioElement> {
    const wav = await this.bridge.request("clip", { item_id: itemId });
    if (!(wav instanceof DataView)) throw new Error("The kernel sent no audio for this turn.");
    const bytes = new Uint8Array(wav.byteLength);
    bytes.set(new Uint8Array(wav.buffer, wav.byteOffset, wav.byteLength));
    const url = URL.createObjectURL(new Blob([bytes], { type: "audio/wav" }));
    const player = new Audio(url);
    player.dataset.rtw = "turn-audio";
    player.dataset.item = itemId;
    player.addEventListener("ended", () => URL.revokeObjectURL(url), { once: true });
    await player.play();
    return player;
  }

  get isTalking(): boolean {
    return this.talking;
  }

  /** End the call and release the microphone. */
  stop(reason: string | null = null): void {
    if (this.state.status === "idle" || this.state.status === "closed") return;
    if (this.live && this.state.status === "connected" && this.channel?.readyState === "open" && reason === null) {
      // Graceful: session.close, and the peer stays up until session.closed brings the usage.
      if (this.closing !== null) return;
      this.send([{ type: "session.close" }]);
      this.closing = window.setTimeout(() => this.end(null), CLOSE_GRACE_MS);
      return;
    }
    this.end(reason);
  }

  private end(reason: string | null): void {
    if (this.live && this.closing === null && this.channel?.readyState === "open" && this.state.status === "connected") {
      // Ended without waiting (the page going, the kernel gone): still tell GPT-Live to close.
      try {
        this.channel.send(JSON.stringify({ type: "session.close" }));
      } catch {
        // closing already
      }
    }
    this.attempt++;
    this.release();
    this.setState({ status: "closed", error: reason, step: null });
  }

  private fail(attempt: number, step: Step, message: string): void {
    if (this.attempt !== attempt) return;
    this.attempt++;
    this.release();
    this.setState({ status: "error", error: message, step });
  }

  private release(): void {
    if (this.closing !== null) window.clearTimeout(this.closing);
    this.closing = null;
    this.started = null;
    this.posting?.abort();
    this.posting = null;
    if (this.dropTimer !== null) window.clearTimeout(this.dropTimer);
    this.dropTimer = null;
    if (this.recorder) void this.recorder.stop(); // what it holds still goes to the kernel
    this.recorder = null;
    if (this.mic) stopTracks(this.mic);
    this.mic = null;
    this.meters.close();
    this.talking = false; // push-to-talk stays on: the kernel's config keeps turn detection off
    if (this.channel) {
      this.channel.onclose = null;
      this.channel.close();
      this.channel = null;
    }
    this.pc?.close();
    this.pc = null;
    if (this.audio) {
      this.audio.srcObject = null;
      this.audio.remove();
      this.audio = null;
    }
    this.outbox = [];
  }

  private setState(change: Partial<CallState>): void {
    this.state = { ...this.state, ...change };
    if (this.state.status !== "idle") {
      this.bridge.post({
        kind: "status",
        status: this.state.status,
        error: this.state.error,
        step: this.state.step,
        call_id: this.state.callId,
        muted: this.state.muted,
        microphone: this.state.micError,
        max_message_size: this.pc?.sctp?.maxMessageSize ?? null,
      });
    }
    this.emit("state", this.state);
  }

  /** Inbound audio as getStats reports it (for tests and meters). */
  async inboundAudio(): Promise<{ energy: number; level: number; packets: number }> {
    const out = { energy: 0, level: 0, packets: 0 };
    if (!this.pc) return out;
    const stats = await this.pc.getStats();
    stats.forEach((report) => {
      if (report.type === "inbound-rtp" && report.kind === "audio") {
        out.energy += report.totalAudioEnergy ?? 0;
        out.level = Math.max(out.level, report.audioLevel ?? 0);
        out.packets += report.packetsReceived ?? 0;
      }
    });
    return out;
  }

  private readonly onPageHide = (): void => {
    this.stop(PAGE_GONE);
  };

  dispose(): void {
    window.removeEventListener("pagehide", this.onPageHide);
    this.offModel();
    this.stop("The widget was closed.");
    this.clear();
    window.__rtw_calls?.delete(this);
  }
}
