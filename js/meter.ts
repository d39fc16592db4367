// Level meters: the RMS level of a MediaStream, read when a view draws. One AudioContext per
// call, made on first use and closed with the call, so meters never leak audio graphs.

export class Meters {
  private context: AudioContext | null = null;
  private analysers = new Map<string, { source: MediaStreamAudioSourceNode; analyser: AnalyserNode }>();
  private buffer = new Float32Array(1024);

  /** Measure this stream under a name ("input", "output"); null stops measuring it. */
  attach(name: string, stream: MediaStream | null): void {
    this.detach(name);
    if (!stream || stream.getAudioTracks().length === 0) return;
    this.context ??= new AudioContext();
    const source = this.context.createMediaStreamSource(stream);
    const analyser = this.context.createAnalyser();
    analyser.fftSize = 1024;
    source.connect(analyser); // not to the destination: measuring must not play anything
    this.analysers.set(name, { source, analyser });
  }

  /** The level in [0, 1] (RMS of the last ~20 ms), 0 when not measured. */
  level(name: string): number {
    const entry = this.analysers.get(name);
    if (!entry) return 0;
    entry.analyser.getFloatTimeDomainData(this.buffer);
    let sum = 0;
    for (const v of this.buffer) sum += v * v;
    return Math.min(1, Math.sqrt(sum / this.buffer.length) * 4); // speech RMS ~0.05-0.25
  }

  private detach(name: string): void {
    const entry = this.analysers.get(name);
    if (!entry) return;
    entry.source.disconnect();
    this.analysers.delete(name);
  }

  close(): void {
    for (const name of [...this.analysers.keys()]) this.detach(name);
    void this.context?.close();
    this.context = null;
  }
}
