"""One redaction step for everything that leaves the kernel.

The kernel holds secrets: the standard API key, the client secrets it mints, Azure keys, hub
tokens, tool credentials (an MCP server's ``authorization`` and ``headers``), the password in an
endpoint URL. Anything synced to the page, posted to it, raised to the user or logged passes
:func:`redact`, which replaces each secret the process has registered with its masked form.
Library error texts are the usual way a secret escapes (httpx puts a refused ``Authorization``
header in its exception), so no such text leaves without this step.

Keys are checked where they enter (:func:`normalise_key`): surrounding whitespace (a key read
from a file keeps its newline) is stripped, and a character no key has (a pasted U+200B) is
refused with a message that shows only the masked key. A malformed key never reaches a library.
"""

from __future__ import annotations

import json
import re
import threading
import unicodedata
from collections.abc import Iterable
from typing import Any, TypeVar

T = TypeVar("T")

# Shorter strings are not worth redacting (and would mangle ordinary text): no real secret is.
_MIN_SECRET = 8
_lock = threading.Lock()
_secrets: dict[str, str] = {}  # a form the secret may take in text -> its mask
_pattern: re.Pattern[str] | None = None


class KeyFormatError(ValueError):
    """A key with a character no key has; the message shows only its masked form."""


def mask(secret: str | None) -> str:
    """What may be shown of a secret: its first 3 and last 4 characters (as OpenAI shows a
    refused key), or ``***`` for a short one.

    >>> mask("sk-not.a.real.key-1234")
    'sk-…1234'
    """
    if not secret:
        return "none"
    return f"{secret[:3]}…{secret[-4:]}" if len(secret) > 12 else "***"


def _forms(secret: str) -> Iterable[str]:
    """The ways a secret appears in text: as is, and as repr and JSON escape it."""
    yield secret
    yield repr(secret)[1:-1]
    yield json.dumps(secret)[1:-1]
    yield json.dumps(secret, ensure_ascii=False)[1:-1]
    yield secret.encode("unicode_escape").decode("ascii")


def register(*secrets: str | None) -> None:
    """Remember secrets held in this process so that :func:`redact` hides them."""
    global _pattern
    with _lock:
        changed = False
        for secret in secrets:
            if not secret or len(secret.strip()) < _MIN_SECRET:
                continue
            shown = mask(secret.strip())
            for form in {*_forms(secret), *_forms(secret.strip())}:
                if len(form) >= _MIN_SECRET and form not in _secrets:
                    _secrets[form] = shown
                    changed = True
        if changed:
            forms = sorted(_secrets, key=len, reverse=True)  # longest first: no partial masks
            _pattern = re.compile("|".join(re.escape(f) for f in forms))


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by its mask.

    >>> register("sk-test.fake.key.cdef")
    >>> redact("Illegal header value b'Bearer sk-test.fake.key.cdef\\\\n'")
    "Illegal header value b'Bearer sk-…cdef\\\\n'"
    """
    pattern = _pattern
    if pattern is None or not text:
        return text
    return pattern.sub(lambda m: _secrets.get(m.group(0), "***"), text)


def redact_value(value: T) -> T:
    """A JSON-like value (dicts, lists, strings) with every registered secret masked."""
    if isinstance(value, str):
        return redact(value)  # type: ignore[return-value]
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list):
        return [redact_value(v) for v in value]  # type: ignore[return-value]
    return value


def contains_secret(value: Any) -> bool:
    """Whether a JSON-like value holds a registered secret anywhere."""
    pattern = _pattern
    if pattern is None:
        return False
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return pattern.search(text) is not None


def redact_exception(exc: BaseException) -> str:
    """What an exception says, redacted: ``Type: message``."""
    return redact(f"{type(exc).__name__}: {exc}")


def _describe(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}{' ' + name if name else ''}"


def normalise_key(key: str | None, *, what: str = "The API key") -> str | None:
    """A key as it should be sent: surrounding whitespace stripped; refused (with the masked
    key, the character and where it is) if it holds anything but visible ASCII.

    The key is registered for redaction either way, so even a refused one can't leak.

    >>> normalise_key("sk-local-abcdefgh\\n")
    'sk-local-abcdefgh'
    """
    if key is None:
        return None
    if not isinstance(key, str):
        raise KeyFormatError(f"{what} must be a string, not {type(key).__name__}.")
    register(key)
    cleaned = key.strip()
    for index, char in enumerate(cleaned):
        if not ("!" <= char <= "~"):
            raise KeyFormatError(
                f"{what} ({mask(cleaned)}, {len(cleaned)} characters) has a character no key "
                f"has: {_describe(char)} at position {index + 1}. Keys are plain ASCII letters, "
                "digits and - _ characters; text copied from a web page or a document often "
                "carries an invisible one. Copy the key again, or read it from the environment."
            )
    return cleaned or None


def registered() -> int:
    """How many secret forms are registered (for tests)."""
    with _lock:
        return len(_secrets)


def mask_url(url: str) -> str:
    """A URL with the password of its ``user:password@`` part masked (and registered).

    >>> mask_url("https://me:hunter2hunter2@proxy.example/v1")
    'https://me:***@proxy.example/v1'
    """
    match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)([^/@]*)@", url)
    if not match:
        return url
    user, _, password = match.group(2).partition(":")
    register(password, match.group(2))
    shown = f"{user}:***" if password else "***"
    return f"{match.group(1)}{shown}@{url[match.end() :]}"


def mask_tool_credentials(tools: Any) -> Any:
    """Session tools as the page may see them: an MCP tool's ``authorization`` and header values
    masked (and registered), everything else as is."""
    if not isinstance(tools, list):
        return tools
    shown = []
    for tool in tools:
        if isinstance(tool, dict) and tool.get("type") == "mcp":
            tool = dict(tool)
            if isinstance(tool.get("authorization"), str):
                register(tool["authorization"])
                tool["authorization"] = mask(tool["authorization"])
            if isinstance(tool.get("headers"), dict):
                headers = {}
                for name, value in tool["headers"].items():
                    if isinstance(value, str):
                        register(value)
                        value = mask(value)
                    headers[name] = value
                tool["headers"] = headers
        shown.append(tool)
    return shown
