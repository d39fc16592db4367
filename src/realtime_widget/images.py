"""Images as a user turn: a path, bytes, a PIL image or a numpy array, as an ``input_image``.

The Realtime API takes an image as a data URL in a ``conversation.item.create``. One event must
fit one message of the call (a WebRTC data channel carries 256 KiB), so an image too big is made
smaller when Pillow is installed (scaled down, then JPEG), and refused with what to do when not.
A numpy array is encoded as PNG with the standard library alone.
"""

from __future__ import annotations

import base64
import io
import struct
import zlib
from pathlib import Path
from typing import Any

MIME = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF8": "image/gif"}
SUFFIXES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
            ".gif": "image/gif", ".webp": "image/webp"}  # fmt: skip


class ImageError(ValueError):
    """An image that can't be sent; the message says what to do."""


def _sniff(data: bytes) -> str | None:
    for magic, mime in MIME.items():
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _png(pixels: Any) -> bytes:
    """A numpy array (H×W grey, H×W×3 RGB or H×W×4 RGBA; uint8, or floats in 0..1) as PNG."""
    import numpy as np

    array = np.asarray(pixels)
    if array.dtype.kind == "f":
        array = np.clip(array * 255.0, 0, 255)
    array = array.astype(np.uint8)
    if array.ndim == 2:
        colour = 0
    elif array.ndim == 3 and array.shape[2] in (3, 4):
        colour = 2 if array.shape[2] == 3 else 6
    else:
        raise ImageError(
            f"An image array must be H×W, H×W×3 or H×W×4, not {array.shape}: pass pixels."
        )
    height, width = array.shape[:2]
    rows = b"".join(b"\x00" + array[y].tobytes() for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 6))
        + chunk(b"IEND", b"")
    )


def image_bytes(source: Any) -> tuple[bytes, str]:
    """The encoded image and its MIME type, from any source the widget takes."""
    if isinstance(source, str) and source.startswith("data:image/"):
        header, _, encoded = source.partition(",")
        return base64.b64decode(encoded), header[5:].split(";")[0]
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"No image file at {str(path)!r}.")
        data = path.read_bytes()
        mime = _sniff(data) or SUFFIXES.get(path.suffix.lower())
        if mime is None:
            raise ImageError(f"{path.name} is not a PNG, JPEG, GIF or WebP image.")
        return data, mime
    if isinstance(source, (bytes, bytearray)):
        mime = _sniff(bytes(source))
        if mime is None:
            raise ImageError("These bytes are not a PNG, JPEG, GIF or WebP image.")
        return bytes(source), mime
    if hasattr(source, "save") and hasattr(source, "size"):  # a PIL image
        buffer = io.BytesIO()
        source.save(buffer, format="PNG")
        return buffer.getvalue(), "image/png"
    if hasattr(source, "__array__") or isinstance(source, list):
        return _png(source), "image/png"
    raise ImageError(
        f"An image is a path, bytes, a PIL image or a numpy array, not {type(source).__name__}."
    )


def _shrink(data: bytes, limit: int) -> tuple[bytes, str] | None:
    """Scale down and re-encode as JPEG until it fits ``limit`` bytes (needs Pillow)."""
    try:
        from PIL import Image
    except ImportError:
        return None
    image = Image.open(io.BytesIO(data)).convert("RGB")
    while True:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        if buffer.tell() <= limit or min(image.size) < 64:
            return (buffer.getvalue(), "image/jpeg") if buffer.tell() <= limit else None
        image = image.resize((max(1, image.width * 3 // 4), max(1, image.height * 3 // 4)))


def data_url(source: Any, *, limit: int) -> str:
    """The image as a data URL whose base64 fits ``limit`` bytes (shrunk if it must be)."""
    data, mime = image_bytes(source)
    budget = limit * 3 // 4  # base64 grows by a third
    if len(data) > budget:
        shrunk = _shrink(data, budget)
        if shrunk is None:
            raise ImageError(
                f"The image is {len(data) // 1024:,} KiB and one event of the call carries about "
                f"{budget // 1024:,} KiB of image: pass a smaller one, or install Pillow "
                "(pip install pillow) to let the widget scale it down."
            )
        data, mime = shrunk
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def image_turn(source: Any, text: str = "", *, detail: str = "auto", limit: int) -> dict[str, Any]:
    """A ``conversation.item.create`` of a user message: the image, then the text if any."""
    content: list[dict[str, Any]] = [
        {"type": "input_image", "image_url": data_url(source, limit=limit), "detail": detail}
    ]
    if text:
        content.append({"type": "input_text", "text": text})
    return {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": content},
    }
