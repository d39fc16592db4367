// The Audio panel: microphone picker, push-to-talk (hold the button, or Space with the panel
// focused), turn detection (server VAD, semantic VAD, off) with its main knobs, input and
// output level meters, output volume. Every change is a client event the kernel sees echoed, or
// a synced trait (push_to_talk, volume) Python sees and sets too.

import type { Call } from "../call";
import type { Levels } from "../meter";
import { h } from "./dom";

type Detection = "server_vad" | "semantic_vad" | "off";

function labelled(text: string, ...controls: HTMLElement[]): HTMLElement {
  return h("label", { className: "rtw-field" }, h("span", { className: "rtw-field-label" }, text), ...controls);
}

function meter(name: string): { el: HTMLElement; bar: HTMLElement } {
  const bar = h("div", { className: "rtw-meter-bar" });
  const el = h("div", { className: `rtw-meter rtw-meter-${name}`, role: "meter" }, bar);
  el.setAttribute("aria-label", `${name} level`);
  el.setAttribute("aria-valuemin", "0");
  el.setAttribute("aria-valuemax", "100");
  return { el, bar };
}

export function renderAudio(el: HTMLElement, call: Call): () => void {
  const mics = h("select", { className: "rtw-select rtw-mic-picker" });
  const ptt = h("input", { type: "checkbox", className: "rtw-ptt-toggle" });
  const hold = h("button", { className: "rtw-button rtw-ptt-hold", type: "button" }, "Hold to talk");
  const mode = h("select", { className: "rtw-select rtw-detection" });
  for (const [value, text] of [["server_vad", "Server VAD"], ["semantic_vad", "Semantic VAD"], ["off", "Off (commit yourself)"]]) {
    mode.append(h("option", { value }, text));
  }
  const threshold = h("input", { type: "range", min: "0", max: "1", step: "0.05", value: "0.5", className: "rtw-threshold" });
  const silence = h("input", { type: "number", min: "100", max: "3000", step: "50", value: "500", className: "rtw-input rtw-silence" });
  const padding = h("input", { type: "number", min: "0", max: "2000", step: "50", value: "300", className: "rtw-input rtw-padding" });
  const eagerness = h("select", { className: "rtw-select rtw-eagerness" });
  for (const value of ["auto", "low", "medium", "high"]) eagerness.append(h("option", { value }, value));
  const volume = h("input", { type: "range", min: "0", max: "1", step: "0.05", className: "rtw-volume" });
  const volumeValue = h("output", { className: "rtw-value rtw-volume-value" });
  const thresholdValue = h("output", { className: "rtw-value rtw-threshold-value" });
  volume.setAttribute("aria-label", "Volume of the model's voice");
  threshold.setAttribute("aria-label", "VAD threshold");
  const input = meter("input");
  const output = meter("output");
  const pttHint = h("span", { className: "rtw-hint rtw-ptt-hint" });
  const vadKnobs = h("div", { className: "rtw-row rtw-vad-knobs" }, labelled("Threshold", threshold, thresholdValue), labelled("Silence ms", silence), labelled("Padding ms", padding));
  const semanticKnobs = h("div", { className: "rtw-row rtw-semantic-knobs" }, labelled("Eagerness", eagerness));
  el.append(
    h("div", { className: "rtw-row" }, labelled("Microphone", mics), labelled("Volume", volume, volumeValue)),
    h("div", { className: "rtw-row" }, labelled("Push to talk", ptt), hold),
    h("div", { className: "rtw-row" }, labelled("Turn detection", mode), pttHint),
    vadKnobs,
    semanticKnobs,
    h("div", { className: "rtw-row" }, labelled("Input", input.el), labelled("Output", output.el)),
  );

  const detection = (): Record<string, unknown> | null => {
    const kind = mode.value as Detection;
    if (kind === "off") return null;
    if (kind === "semantic_vad") return { type: "semantic_vad", eagerness: eagerness.value };
    return {
      type: "server_vad",
      threshold: Number(threshold.value),
      silence_duration_ms: Math.round(Number(silence.value)),
      prefix_padding_ms: Math.round(Number(padding.value)),
    };
  };
  const applyDetection = () => {
    draw();
    if (call.state.status !== "connected" || call.pushToTalk) return; // push-to-talk owns it
    call.send([{ type: "session.update", session: { type: "realtime", audio: { input: { turn_detection: detection() } } } }]);
  };

  // Show the server's turn detection (session.created / session.updated), whoever set it.
  const fromSession = () => {
    const input = (call.session?.audio as { input?: { turn_detection?: Record<string, unknown> | null } } | undefined)?.input;
    if (!input || !("turn_detection" in input) || call.pushToTalk) return;
    const td = input.turn_detection;
    mode.value = td ? String(td.type) : "off";
    if (typeof td?.threshold === "number") threshold.value = String(td.threshold);
    if (typeof td?.silence_duration_ms === "number") silence.value = String(td.silence_duration_ms);
    if (typeof td?.prefix_padding_ms === "number") padding.value = String(td.prefix_padding_ms);
    if (typeof td?.eagerness === "string") eagerness.value = td.eagerness;
    draw();
  };

  let micsFound = false;
  const listMicrophones = async () => {
    const devices = (await navigator.mediaDevices?.enumerateDevices?.()) ?? [];
    const inputs = devices.filter((d) => d.kind === "audioinput");
    micsFound = inputs.length > 0;
    mics.replaceChildren(...inputs.map((d, i) => h("option", { value: d.deviceId }, d.label || `Microphone ${i + 1}`)));
    if (!micsFound) mics.append(h("option", { value: "" }, "No microphone found"));
    mics.value = call.micDeviceId || call.micChoice;
    draw();
  };

  const draw = () => {
    const connected = call.state.status === "connected";
    const hasMic = call.micTrack !== null;
    // Chosen before a call, the microphone is the one it opens; during one, it is swapped in.
    mics.disabled = !micsFound || (connected && !hasMic);
    ptt.checked = call.pushToTalk;
    ptt.disabled = !connected || !hasMic;
    hold.disabled = !call.pushToTalk || !connected || !hasMic || call.state.muted;
    hold.setAttribute("aria-pressed", String(call.isTalking));
    hold.textContent = call.isTalking ? "Talking… (release to send)" : "Hold to talk";
    mode.disabled = call.pushToTalk;
    pttHint.textContent = call.pushToTalk
      ? "Off while push-to-talk is on: releasing the button sends the turn."
      : "Nothing ends a turn by itself: use push-to-talk, or send input_audio_buffer.commit and response.create (Compose tab, w.send).";
    pttHint.hidden = !call.pushToTalk && mode.value !== "off";
    vadKnobs.hidden = mode.value !== "server_vad" || call.pushToTalk;
    semanticKnobs.hidden = mode.value !== "semantic_vad" || call.pushToTalk;
    volume.value = String(call.volume);
    volumeValue.textContent = `${Math.round(call.volume * 100)}%`;
    thresholdValue.textContent = Number(threshold.value).toFixed(2);
  };

  // Meters: the call's one frame loop feeds them while this panel is on screen (not in a hidden
  // tab, not scrolled away); it runs only while the call measures something.
  const show = (levels: Levels) => {
    for (const [name, m] of [["input", input], ["output", output]] as const) {
      const level = Math.round(levels[name] * 100);
      m.bar.style.width = `${level}%`;
      m.el.setAttribute("aria-valuenow", String(level));
    }
  };
  let unwatch: (() => void) | null = null;
  const visible = new IntersectionObserver((entries) => {
    const onScreen = entries[entries.length - 1]?.isIntersecting ?? false;
    if (onScreen && !unwatch) unwatch = call.meters.watch(show);
    else if (!onScreen && unwatch) {
      unwatch();
      unwatch = null;
    }
  });
  visible.observe(el);

  mics.addEventListener("change", () => void call.switchMicrophone(mics.value).then(draw));
  ptt.addEventListener("change", () => call.choosePushToTalk(ptt.checked));
  // The button keeps the pointer while held (a drag off it does not end the turn); a cancelled
  // pointer, a key released elsewhere or the page losing focus ends it like a release.
  hold.addEventListener("pointerdown", (e) => {
    e.preventDefault();
    if (hold.disabled) return;
    call.talk(true);
    try {
      hold.setPointerCapture(e.pointerId);
    } catch {
      // a synthetic event (a script, a test) has no live pointer to capture
    }
  });
  const release = () => {
    if (call.isTalking) call.talk(false);
  };
  hold.addEventListener("pointerup", release);
  hold.addEventListener("pointercancel", release);
  hold.addEventListener("lostpointercapture", release);
  // Space held anywhere in the panel talks (not while typing in a field).
  const keydown = (e: KeyboardEvent) => {
    if (e.key !== " " || !call.pushToTalk || e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
    e.preventDefault();
    if (!e.repeat) call.talk(true);
  };
  const keyup = (e: KeyboardEvent) => {
    if (e.key !== " " || !call.isTalking) return;
    e.preventDefault();
    release();
  };
  el.addEventListener("keydown", keydown);
  window.addEventListener("keyup", keyup);
  window.addEventListener("blur", release);
  for (const control of [mode, threshold, silence, padding, eagerness]) control.addEventListener("change", applyDetection);
  threshold.addEventListener("input", () => (thresholdValue.textContent = Number(threshold.value).toFixed(2)));
  volume.addEventListener("input", () => call.chooseVolume(Number(volume.value), false));
  volume.addEventListener("change", () => call.chooseVolume(Number(volume.value), true));

  const offEvent = call.on("event", (record) => {
    if (record.dir === "in" && (record.event.type === "session.created" || record.event.type === "session.updated")) fromSession();
  });
  const offState = call.on("state", () => {
    draw();
    if (call.state.status === "connected") void listMicrophones();
  });
  draw();
  fromSession();
  void listMicrophones();
  const devices = navigator.mediaDevices;
  const onDevices = () => void listMicrophones(); // a microphone plugged in or out
  devices?.addEventListener?.("devicechange", onDevices);
  return () => {
    devices?.removeEventListener?.("devicechange", onDevices);
    window.removeEventListener("keyup", keyup);
    window.removeEventListener("blur", release);
    offEvent();
    offState();
    visible.disconnect();
    unwatch?.();
  };
}
