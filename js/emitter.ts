// A tiny typed event emitter: the call tells its views what changed, and nothing more.

export class Emitter<Events extends Record<string, unknown>> {
  private handlers: { [K in keyof Events]?: Set<(value: Events[K]) => void> } = {};

  on<K extends keyof Events>(name: K, handler: (value: Events[K]) => void): () => void {
    const set = (this.handlers[name] ??= new Set());
    set.add(handler);
    return () => set.delete(handler);
  }

  emit<K extends keyof Events>(name: K, value: Events[K]): void {
    for (const handler of this.handlers[name] ?? []) {
      try {
        handler(value);
      } catch (error) {
        console.error("realtime-widget: a view's handler failed", error);
      }
    }
  }

  clear(): void {
    this.handlers = {};
  }
}
