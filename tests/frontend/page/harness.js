// A stand-in for anywidget's model, so the built widget.js runs in a plain page: the test plays
// the kernel (window.rtwToKernel, exposed by Playwright) and reads what the widget sent.

import widget from "/static/widget.js";

class FakeModel {
  constructor(state) {
    this.state = { ...state };
    this.handlers = new Map();
    this.sent = []; // every custom message the widget sent, in order, with the page's time
    this.widget_manager = {};
  }
  get(name) {
    return this.state[name];
  }
  set(name, value) {
    this.state[name] = value;
    this.emit(`change:${name}`, value);
  }
  on(name, handler) {
    if (!this.handlers.has(name)) this.handlers.set(name, new Set());
    this.handlers.get(name).add(handler);
  }
  off(name, handler) {
    if (name === undefined) this.handlers.clear();
    else if (handler === undefined) this.handlers.delete(name);
    else this.handlers.get(name)?.delete(handler);
  }
  emit(name, ...args) {
    for (const handler of [...(this.handlers.get(name) ?? [])]) handler(...args);
  }
  send(content) {
    const msg = JSON.parse(JSON.stringify(content)); // what the comm would carry
    this.sent.push(msg);
    window.rtwToKernel?.(msg);
  }
  save_changes() {}
}

const model = new FakeModel({
  mode: "ephemeral",
  status: "idle",
  error: "",
  call_id: "",
  muted: false,
  session: { type: "realtime" },
  endpoint_label: "local (fake model page)",
  notices: [],
  _call_key: "page-widget",
});

const cleanups = [];
const rtw = {
  model,
  sent: model.sent,
  ready: false,
  closed: false,
  /** Deliver a kernel -> browser custom message, as anywidget does. */
  deliver(msg) {
    model.emit("msg:custom", msg, []);
  },
  render(id) {
    const cleanup = widget.render({ model, el: document.getElementById(id), experimental: {} });
    if (typeof cleanup === "function") cleanups.push(cleanup);
  },
  /** The call's inbound audio, polled so a test can wait on it. */
  pollAudio() {
    const call = [...window.__rtw_calls][0];
    const timer = setInterval(async () => {
      rtw.audio = await call.inboundAudio();
    }, 100);
    cleanups.push(() => clearInterval(timer));
  },
  /** Close the widget: views first, then initialize's cleanup (as the widget manager does). */
  async close() {
    while (cleanups.length) await cleanups.pop()();
    rtw.closed = true;
  },
};
window.rtw = rtw;

const teardown = await widget.initialize({ model, experimental: {} });
if (typeof teardown === "function") cleanups.unshift(teardown);
rtw.render("view-1");
rtw.render("view-2");
rtw.ready = true;
