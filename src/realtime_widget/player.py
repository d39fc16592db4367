"""AudioPlayer: a WAV played in the notebook, sent to the page as a binary buffer.

IPython's ``Audio`` embeds base64 in the output; a recording of a call is megabytes a minute,
so this player's WAV is a synced ``Bytes`` trait, which the comm carries as a binary buffer.
"""

from __future__ import annotations

import anywidget
import traitlets

_ESM = """
function render({ model, el }) {
  const audio = document.createElement("audio");
  audio.controls = true;
  audio.preload = "metadata";
  audio.className = "rtw-player";
  const label = document.createElement("span");
  label.className = "rtw-player-label";
  label.style.cssText = "margin-left:8px;font-size:12px;opacity:.75;vertical-align:middle";
  let url = null;
  const load = () => {
    if (url) URL.revokeObjectURL(url);
    const wav = model.get("wav");
    const blob = wav && wav.byteLength ? new Blob([wav], { type: "audio/wav" }) : null;
    url = blob ? URL.createObjectURL(blob) : null;
    if (url) audio.src = url;
    else audio.removeAttribute("src");
    label.textContent = model.get("label");
  };
  model.on("change:wav", load);
  model.on("change:label", load);
  load();
  el.append(audio, label);
  return () => {
    model.off("change:wav", load);
    model.off("change:label", load);
    if (url) URL.revokeObjectURL(url);
  };
}
export default { render };
"""


class AudioPlayer(anywidget.AnyWidget):
    """A player of one WAV (a recording, a turn's audio)."""

    _esm = _ESM
    wav = traitlets.Bytes(b"").tag(sync=True)
    label = traitlets.Unicode("").tag(sync=True)
