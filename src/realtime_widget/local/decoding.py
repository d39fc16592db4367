"""Decode each call's incoming audio on the event loop instead of in a thread per call.

aiortc gives every receiver a decoder thread of its own, which hands each decoded 20 ms frame
back to the loop with ``run_coroutine_threadsafe`` (a coroutine, a future and a task per frame).
For a workshop's practice server that is 50 wake-ups a second per call from as many threads, all
contending for the GIL with the one event loop that paces every call's audio: at 30 calls the loop
spent more time waiting to get the GIL back after each ``sendto`` than doing work, and 40 calls
broke up with the machine a third idle. An Opus frame decodes in tens of microseconds, less than
the hand-off costs, so this module decodes it where the packet arrives and puts the frame straight
on the track's queue.

aiortc has no hook for this: :func:`decode_on_the_loop` swaps each receiver's decoder queue for one
that decodes on ``put``, and gives such a receiver a thread that is never started (starting one
only for it to return cost the loop a thread's creation and a GIL hand-off per call). It checks the
internals it relies on and leaves aiortc as it is if they are not there (a newer aiortc then
decodes in threads, as before: slower, not wrong).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import av
from aiortc import rtcrtpreceiver
from aiortc.codecs import get_decoder

__all__ = ["decode_on_the_loop"]

logger = logging.getLogger(__name__)

_QUEUE = "_RTCRtpReceiver__decoder_queue"
_ERROR = "_RTCRtpReceiver__decoder_error"


class _DecodeOnPut:
    """A receiver's decoder queue that decodes what is put on it, on the caller's thread.

    aiortc puts ``(codec, encoded_frame)`` from the loop as frames complete, and ``None`` when
    the receiver stops; decoded frames (and the ``None`` that ends the track) go to the track.
    """

    def __init__(self, track_queue: asyncio.Queue[Any], error: threading.Event) -> None:
        self._track_queue = track_queue
        self._error = error
        self._decoder: Any = None
        self._codec_name: str | None = None

    def put(self, task: tuple[Any, Any] | None) -> None:
        if task is None:
            self._track_queue.put_nowait(None)
            self._decoder = None
            return
        codec, encoded_frame = task
        if codec.name != self._codec_name:
            self._decoder, self._codec_name = get_decoder(codec), codec.name
        try:
            frames = self._decoder.decode(encoded_frame)
        except av.FFmpegError as exc:
            # As aiortc does: keep the decoder's state and let the receiver know.
            logger.warning("failed to decode a %s frame: %s", codec.name, exc)
            self._error.set()
            return
        for frame in frames:
            self._track_queue.put_nowait(frame)


class _NoThread:
    """Stands for the decoder thread of a receiver whose queue decodes on put: aiortc only
    starts it, tests it for truth and joins it."""

    def start(self) -> None:
        pass

    def join(self, timeout: float | None = None) -> None:
        pass

    def is_alive(self) -> bool:
        return False


class _Threading:
    """``threading`` as aiortc's receiver module sees it: a decoder thread is not made for a
    queue that decodes on put; everything else is the real module."""

    def __getattr__(self, name: str) -> Any:
        return getattr(threading, name)

    @staticmethod
    def Thread(*args: Any, **kwargs: Any) -> Any:
        target_args = kwargs.get("args", ())
        if len(target_args) > 1 and isinstance(target_args[1], _DecodeOnPut):
            return _NoThread()
        return threading.Thread(*args, **kwargs)


def decode_on_the_loop() -> bool:
    """Make aiortc decode received audio on the event loop; ``True`` when in effect.

    Calling this again does nothing.

    >>> decode_on_the_loop()
    True
    >>> decode_on_the_loop()
    True
    """
    receiver = rtcrtpreceiver.RTCRtpReceiver
    if getattr(receiver.receive, "_realtime_widget_inline", False):
        return True
    if getattr(rtcrtpreceiver, "threading", None) is not threading or not hasattr(
        receiver, "receive"
    ):
        logger.info("aiortc's receiver is not as expected: decoding stays in its threads")
        return False
    original_receive = receiver.receive

    async def receive(self: Any, parameters: Any) -> None:
        error, track = getattr(self, _ERROR, None), getattr(self, "_track", None)
        queue = getattr(track, "_queue", None)
        audio = getattr(self, "_RTCRtpReceiver__kind", None) == "audio"  # video keeps its thread
        if audio and isinstance(error, threading.Event) and isinstance(queue, asyncio.Queue):
            setattr(self, _QUEUE, _DecodeOnPut(queue, error))
        await original_receive(self, parameters)

    receive._realtime_widget_inline = True  # type: ignore[attr-defined]
    receiver.receive = receive  # type: ignore[method-assign]
    rtcrtpreceiver.threading = _Threading()  # type: ignore[attr-defined,assignment]
    return True
