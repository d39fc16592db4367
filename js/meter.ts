// Level meters: the RMS level of the microphone and of the model's voice. One AudioContext per
// call, made on first use and closed with the call, so meters never leak audio graphs; one
// requestAnimationFrame loop per call, running only while a view on screen watches and there is
// something to measure.

export type Levels = { input: number; output: number };
type Name = keyof Levels;

const SILENT: Levels = { input: 0, output: 0 };

export class Meters {
  private context: AudioContext | null = null;
  private analysers = new Map<Name, { source: MediaStreamAudioSourceNode; analyser: AnalyserNode }>();
  private buffer = new Float32Array(1024);
  private watchers = new Set<(levels: Levels) => void>();
  private frame: number | null = null;

  /** Measure this stream under a name; null stops measuring it. */
  attach(name: Name, stream: MediaStream | null): void {
    this.detach(name);
    if (!stream || stream.getAudioTracks().length === 0) return;
    this.context ??= new AudioContext();
    // Made without a click (w.connect() from Python), a context may start suspended.
    if (this.context.state === "suspended") void this.context.resume();
    const source = this.context.createMediaStreamSource(stream);
    const analyser = this.context.createAnalyser();
    analyser.fftSize = 1024;
    source.connect(analyser); // not to the destination: measuring must not play anything
    this.analysers.set(name, { source, analyser });
    this.run();
  }

  /** The level in [0, 1] (RMS of the last ~20 ms), 0 when not measured. */
  level(name: Name): number {
    const entry = this.analysers.get(name);
    if (!entry) return 0;
    entry.analyser.getFloatTimeDomainData(this.buffer);
    let sum = 0;
    for (const v of this.buffer) sum += v * v;
    return Math.min(1, Math.sqrt(sum / this.buffer.length) * 4); // speech RMS ~0.05-0.25
  }

  /** Call fn with the levels on every frame while measuring; returns the way to stop. A view
   * watches only while it is on screen. */
  watch(fn: (levels: Levels) => void): () => void {
    this.watchers.add(fn);
    this.run();
    return () => {
      this.watchers.delete(fn);
      if (this.watchers.size === 0) this.pause();
    };
  }

  get running(): boolean {
    return this.frame !== null;
  }

  private run(): void {
    if (this.frame !== null || this.watchers.size === 0 || this.analysers.size === 0) return;
    const tick = () => {
      const levels = { input: this.level("input"), output: this.level("output") };
      for (const fn of this.watchers) fn(levels);
      this.frame = requestAnimationFrame(tick);
    };
    this.frame = requestAnimationFrame(tick);
  }

  private pause(): void {
    if (this.frame !== null) cancelAnimationFrame(this.frame);
    this.frame = null;
  }

  private detach(name: Name): void {
    const entry = this.analysers.get(name);
    if (!entry) return;
    entry.source.disconnect();
    this.analysers.delete(name);
  }

  /** The call ended: stop the loop, show silence, close the context. */
  close(): void {
    this.pause();
    for (const name of [...this.analysers.keys()]) this.detach(name);
    for (const fn of this.watchers) fn(SILENT);
    void this.context?.close();
    this.context = null;
  }
}
