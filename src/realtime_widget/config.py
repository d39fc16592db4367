"""Where the realtime server is and how to authenticate to it; the session from keyword arguments.

An :class:`Endpoint` is a base URL, an auth style (``Authorization: Bearer`` or Azure's
``api-key`` header) and the standard key. The key is held here, in the kernel, and nowhere else:
``repr`` masks it and no trait or message carries it.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .protocol import (
    SchemaError,
    is_live_model,
    model_warning,
    validate_live_session,
    validate_session,
)
from .redact import KeyFormatError, mask, mask_url, normalise_key

if TYPE_CHECKING:
    from .local import LocalServer

DEFAULT_MODEL = "gpt-realtime-2"
OPENAI_BASE_URL = "https://api.openai.com/v1"
AuthStyle = Literal["bearer", "api-key"]


class ConfigError(ValueError):
    """A configuration the widget cannot connect with; the message says how to fix it."""


@dataclass(frozen=True)
class Endpoint:
    """A Realtime-compatible provider: OpenAI, Azure OpenAI, the local server or any base URL.

    >>> Endpoint.openai(api_key="sk-test").calls_url
    'https://api.openai.com/v1/realtime/calls'
    """

    base_url: str
    api_key: str | None = field(default=None, repr=False)
    auth: AuthStyle = "bearer"
    name: str = "custom"

    def __post_init__(self) -> None:
        # Keys are checked where they enter: a stray newline (a key read from a file) is
        # stripped, a character no key has is refused with only the masked key shown.
        try:
            key = normalise_key(self.api_key)
        except KeyFormatError as exc:
            raise ConfigError(str(exc)) from None
        object.__setattr__(self, "api_key", key)
        mask_url(self.base_url)  # registers a password in the URL for redaction

    @classmethod
    def openai(cls, api_key: str | None = None) -> Endpoint:
        return cls(OPENAI_BASE_URL, api_key or os.environ.get("OPENAI_API_KEY"), "bearer", "openai")

    @classmethod
    def azure(cls, resource: str, api_key: str | None = None) -> Endpoint:
        """Azure OpenAI's GA surface; the model is the deployment name."""
        key = api_key or os.environ.get("AZURE_OPENAI_API_KEY")
        host = resource if "." in resource else f"{resource}.openai.azure.com"
        return cls(f"https://{host}/openai/v1", key, "api-key", "azure")

    @classmethod
    def local(cls) -> Endpoint:
        """The bundled local server, started in the background once per process."""
        server = shared_local_server()
        return cls(server.base_url, "sk-local-no-key-needed", "bearer", "local")

    @classmethod
    def hub(cls) -> Endpoint:
        """A workshop's broker on JupyterHub: the learner's server token, no key of their own."""
        token = os.environ.get("JUPYTERHUB_API_TOKEN")
        url = os.environ.get("REALTIME_WIDGET_BROKER_URL")
        if not token:
            raise ConfigError(
                'endpoint="hub" works inside a JupyterHub server (it uses the server\'s '
                '$JUPYTERHUB_API_TOKEN); outside one, use endpoint="openai" or "local".'
            )
        if not url:
            raise ConfigError(
                "No workshop broker is configured on this hub: the hub's admin sets "
                "REALTIME_WIDGET_BROKER_URL for the servers (c.Spawner.environment), see the "
                "README's Workshops section."
            )
        return cls(f"{url.rstrip('/')}/v1", token, "bearer", "hub")

    @property
    def client_secrets_url(self) -> str:
        return f"{self.base_url}/realtime/client_secrets"

    @property
    def calls_url(self) -> str:
        return f"{self.base_url}/realtime/calls"

    def hangup_url(self, call_id: str) -> str:
        return f"{self.base_url}/realtime/calls/{call_id}/hangup"

    def headers(self) -> dict[str, str]:
        """The standard key's auth header (kernel side only)."""
        if not self.api_key:
            raise ConfigError(self.missing_key_message())
        if self.auth == "api-key":
            return {"api-key": self.api_key}
        return {"Authorization": f"Bearer {self.api_key}"}

    def missing_key_message(self) -> str:
        if self.name == "saved":
            return (
                "This shows a saved session: it has no call. Make a RealtimeWidget (or an "
                "Experiment) to talk again."
            )
        if self.name == "azure":
            return (
                "No Azure OpenAI key: pass api_key=... or set AZURE_OPENAI_API_KEY in the "
                "kernel's environment."
            )
        return (
            "No API key: set OPENAI_API_KEY in the kernel's environment (or pass api_key=...), "
            'or use endpoint="local" to talk to the bundled local server with no key.'
        )

    @property
    def label(self) -> str:
        """For the page: the name and the base URL, any password in it masked."""
        return f"{self.name} ({mask_url(self.base_url)})"

    def __repr__(self) -> str:
        return f"Endpoint({self.name!r}, {mask_url(self.base_url)!r}, key={mask(self.api_key)})"


def resolve_endpoint(
    endpoint: str | Endpoint | None, *, api_key: str | None, azure_resource: str | None = None
) -> Endpoint:
    """``"openai"``, ``"azure"``, ``"local"``, a base URL or an :class:`Endpoint`."""
    if isinstance(endpoint, Endpoint):
        return endpoint
    if endpoint is None and not (api_key or os.environ.get("OPENAI_API_KEY")) and in_workshop():
        return Endpoint.hub()  # a learner on a hub with a broker: nothing to configure
    if endpoint is None or endpoint == "openai":
        return Endpoint.openai(api_key)
    if endpoint == "hub":
        return Endpoint.hub()
    if endpoint == "local":
        return Endpoint.local()
    if endpoint == "azure":
        resource = azure_resource or os.environ.get("AZURE_OPENAI_ENDPOINT", "")
        resource = resource.removeprefix("https://").rstrip("/").split("/")[0]
        if not resource:
            raise ConfigError(
                'endpoint="azure" needs the resource: pass azure_resource="my-resource" '
                "or set AZURE_OPENAI_ENDPOINT."
            )
        return Endpoint.azure(resource, api_key)
    if endpoint.startswith(("http://", "https://")):
        return Endpoint(endpoint.rstrip("/"), api_key or os.environ.get("OPENAI_API_KEY"))
    raise ConfigError(
        f"Unknown endpoint {endpoint!r}: use 'openai', 'azure', 'local', 'hub' or a base URL "
        "such as 'https://my-proxy.example/v1'."
    )


def in_workshop() -> bool:
    """Inside a JupyterHub server whose hub runs a workshop broker."""
    return bool(
        os.environ.get("JUPYTERHUB_API_TOKEN") and os.environ.get("REALTIME_WIDGET_BROKER_URL")
    )


_local_lock = threading.Lock()
_local_server: LocalServer | None = None


def shared_local_server() -> LocalServer:
    """One local server per kernel, started on first use; its thread ends with the kernel."""
    global _local_server
    with _local_lock:
        if _local_server is None:
            try:
                from .local import LocalServer
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise ConfigError(
                    'endpoint="local" needs the local server\'s extra: '
                    "pip install 'realtime-widget[local]'"
                ) from exc
            _local_server = LocalServer(port=0).start()
        return _local_server


SessionType = Literal["realtime", "transcription"]
DEFAULT_TRANSCRIPTION_MODEL = "gpt-transcribe"


def build_session(
    *,
    model: str | None = None,
    instructions: str | None = None,
    voice: str | None = None,
    output_modalities: list[str] | None = None,
    turn_detection: dict[str, Any] | Literal["default"] | None = "default",
    transcription: dict[str, Any] | str | None = None,
    tools: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
    session_type: SessionType = "realtime",
) -> dict[str, Any]:
    """The GA session config from the widget's keyword arguments, validated.

    ``transcription="gpt-transcribe"`` is short for ``{"model": ...}``;
    ``turn_detection=None`` turns VAD off. ``session_type="transcription"`` makes a session of
    live captions of the microphone with no replies: it has no model, voice, instructions or
    tools of its own, and its transcription model defaults to ``gpt-transcribe``.
    """
    if session_type == "transcription":
        given = {
            "model": model,
            "instructions": instructions,
            "voice": voice,
            "output_modalities": output_modalities,
            "tools": tools,
        }
        wrong = [name for name, value in given.items() if value is not None]
        if wrong:
            raise ConfigError(
                f"A transcription session (live captions, no replies) has no {wrong[0]}: "
                f"leave it out, or use session_type='realtime' for a conversation."
            )
        transcription = transcription or DEFAULT_TRANSCRIPTION_MODEL
        session: dict[str, Any] = {"type": "transcription"}
    elif session_type == "realtime":
        session = {"type": "realtime", "model": model or DEFAULT_MODEL}
    else:
        raise ConfigError(
            f"session_type is 'realtime' (a conversation) or 'transcription' (live captions), "
            f"not {session_type!r}."
        )
    if isinstance(model, str) and is_live_model(model):
        return build_live_session(
            model=model,
            instructions=instructions,
            voice=voice,
            output_modalities=output_modalities,
            turn_detection=turn_detection,
            transcription=transcription,
            extra=extra,
        )
    if instructions is not None:
        session["instructions"] = instructions
    if output_modalities is not None:
        session["output_modalities"] = output_modalities
    audio_in: dict[str, Any] = {}
    if turn_detection != "default":
        audio_in["turn_detection"] = turn_detection
    if transcription is not None:
        audio_in["transcription"] = (
            {"model": transcription} if isinstance(transcription, str) else transcription
        )
    audio: dict[str, Any] = {}
    if audio_in:
        audio["input"] = audio_in
    if voice is not None:
        audio["output"] = {"voice": voice}
    if audio:
        session["audio"] = audio
    if tools is not None:
        session["tools"] = tools
    if extra:
        session.update(extra)
    try:
        return validate_session(session)
    except SchemaError as exc:
        raise ConfigError(f"Invalid session ({exc.param}): {exc.message}") from None


def build_live_session(
    *,
    model: str,
    instructions: str | None = None,
    voice: str | None = None,
    output_modalities: list[str] | None = None,
    turn_detection: Any = "default",
    transcription: Any = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A GPT-Live session as made at creation (``MediaSessionConfigParam``), validated.

    GPT-Live always speaks and captions both sides, and decides itself when to talk: the
    Realtime knobs for those have no meaning there and are refused, saying so.
    """
    realtime_only = {
        "output_modalities": (output_modalities is not None, "it always speaks"),
        "turn_detection": (turn_detection != "default", "the model decides when to talk"),
        "transcription": (transcription is not None, "it captions both sides itself"),
    }
    for name, (given, why) in realtime_only.items():
        if given:
            raise ConfigError(
                f"GPT-Live ({model!r}) has no {name}: {why}. Leave it out, or use a Realtime "
                "model (e.g. 'gpt-realtime-2.1')."
            )
    session: dict[str, Any] = {"model": model}
    if instructions is not None:
        session["instructions"] = instructions
    if voice is not None:
        session["audio"] = {"output": {"voice": voice}}
    if extra:
        session.update({k: v for k, v in extra.items() if k != "type"})
    try:
        return validate_live_session(session)
    except SchemaError as exc:
        raise ConfigError(f"Invalid GPT-Live session ({exc.param}): {exc.message}") from None


def model_warnings(session: dict[str, Any]) -> list[str]:
    """Warnings for deprecated models in a session config (its model, its transcription's)."""
    transcription = (session.get("audio") or {}).get("input", {}).get("transcription") or {}
    names = [session.get("model"), transcription.get("model")]
    warnings = [model_warning(name) for name in names if isinstance(name, str)]
    return [w for w in warnings if w is not None]
