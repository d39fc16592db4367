// The call's recording (record=True): what the page sends (the microphone, or a recording w.play()
// put in its place) and what it hears (the model's voice), tapped into one Web Audio graph so the
// two channels are sample-aligned, as 24 kHz stereo PCM16 (the user left, the model right) in
// chunks of CHUNK_FRAMES. Each chunk goes to the kernel as a binary buffer with the frame of this
// graph's clock it starts at and the page time of the clock's frame 0 (session/recording.py).
// No DOM here.

export const RATE = 24_000;
const CHUNK_FRAMES = 4_800; // 200 ms: five small messages a second
const FLUSH_WAIT_MS = 200;

// An AudioWorklet (off the main thread, no ScriptProcessor): interleaves the two channels as
// int16 and posts a chunk when full, or early when the clock skipped (a suspended context).
const WORKLET = `
class RtwTap extends AudioWorkletProcessor {
  constructor() {
    super();
    this.pcm = new Int16Array(${CHUNK_FRAMES} * 2);
    this.n = 0;
    this.start = -1;
    this.port.onmessage = () => { this.flush(); this.port.postMessage({ flushed: true }); };
  }
  flush() {
    if (this.n > 0) {
      const pcm = this.pcm.slice(0, this.n * 2);
      this.port.postMessage({ frame: this.start, pcm: pcm.buffer }, [pcm.buffer]);
    }
    this.n = 0;
    this.start = -1;
  }
  process(inputs) {
    const input = inputs[0] || [];
    const left = input[0], right = input[1];
    const frames = left ? left.length : 128;
    if (this.start >= 0 && currentFrame !== this.start + this.n) this.flush();
    if (this.start < 0) this.start = currentFrame;
    for (let i = 0; i < frames; i++) {
      const l = left ? Math.max(-1, Math.min(1, left[i])) : 0;
      const r = right ? Math.max(-1, Math.min(1, right[i])) : 0;
      this.pcm[2 * this.n] = l < 0 ? l * 0x8000 : l * 0x7fff;
      this.pcm[2 * this.n + 1] = r < 0 ? r * 0x8000 : r * 0x7fff;
      this.n++;
      if (this.n === ${CHUNK_FRAMES}) { this.flush(); this.start = currentFrame + i + 1; }
    }
    if (this.n === 0) this.start = -1;
    return true;
  }
}
registerProcessor("rtw-tap", RtwTap);
`;

export type Chunk = (t0: number, frame: number, pcm: ArrayBuffer) => void;

export class Recorder {
  private readonly context = new AudioContext({ sampleRate: RATE });
  private readonly merger = this.context.createChannelMerger(2);
  private tap: AudioWorkletNode | null = null;
  private sources: [MediaStreamAudioSourceNode | null, MediaStreamAudioSourceNode | null] = [null, null];
  private t0: number | null = null;
  private flushed: (() => void) | null = null;
  private readonly ready: Promise<void>;

  constructor(private readonly chunk: Chunk) {
    this.ready = this.setUp();
  }

  private async setUp(): Promise<void> {
    const url = URL.createObjectURL(new Blob([WORKLET], { type: "text/javascript" }));
    try {
      await this.context.audioWorklet.addModule(url);
    } finally {
      URL.revokeObjectURL(url);
    }
    const tap = new AudioWorkletNode(this.context, "rtw-tap", {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      channelCount: 2,
      channelCountMode: "explicit",
      channelInterpretation: "discrete",
    });
    tap.port.onmessage = (e: MessageEvent<{ frame?: number; pcm?: ArrayBuffer; flushed?: boolean }>) => {
      const { frame, pcm, flushed } = e.data;
      if (flushed) this.flushed?.();
      if (pcm === undefined || frame === undefined) return;
      // The page time of this clock's frame 0, read once: chunks then place themselves by frame.
      this.t0 ??= performance.timeOrigin + performance.now() - this.context.currentTime * 1000;
      this.chunk(this.t0, frame, pcm);
    };
    this.merger.connect(tap);
    // Pulled by the destination (silently): a node nothing listens to may not be run.
    const mute = this.context.createGain();
    mute.gain.value = 0;
    tap.connect(mute).connect(this.context.destination);
    this.tap = tap;
    await this.context.resume();
  }

  /** What the page sends now (the microphone's track, a played recording's, or none). */
  input(track: MediaStreamTrack | null): void {
    this.attach(0, track ? new MediaStream([track]) : null);
  }

  /** What the page hears (the model's stream). */
  output(stream: MediaStream | null): void {
    this.attach(1, stream);
  }

  private attach(channel: 0 | 1, stream: MediaStream | null): void {
    this.sources[channel]?.disconnect();
    this.sources[channel] = null;
    if (!stream || stream.getAudioTracks().length === 0 || this.context.state === "closed") return;
    const source = this.context.createMediaStreamSource(stream);
    source.connect(this.merger, 0, channel);
    this.sources[channel] = source;
  }

  /** Send what is buffered, then let the graph go. */
  async stop(): Promise<void> {
    await this.ready.catch(() => undefined);
    if (this.tap && this.context.state !== "closed") {
      const done = new Promise<void>((resolve) => {
        this.flushed = resolve;
        window.setTimeout(resolve, FLUSH_WAIT_MS);
      });
      this.tap.port.postMessage("flush");
      await done;
    }
    for (const source of this.sources) source?.disconnect();
    this.tap?.port.close();
    await this.context.close().catch(() => undefined);
  }

  /** Resolves once the graph runs, rejects if this browser cannot record. */
  get started(): Promise<void> {
    return this.ready;
  }
}
