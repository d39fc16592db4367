"""The local server's model: one Realtime session, small and deterministic.

It speaks the GA Realtime event contract (every event it emits parses with the ``openai``
package's typed models) and answers with a model whose behaviour is fixed and written here, so
that tests and workshops can predict every reply. The parts: ``session`` (the client events,
items, errors), ``detection`` (VAD, the input buffer, barge-in, the idle timeout),
``transcription``, ``responses`` (streaming and usage), ``responder`` (what the model says) and
``mcp`` (remote MCP servers, simulated). Their docstrings hold the details; in short:

How it answers ``response.create`` (the last item of the response's input decides):

- a user text ``T``: ``You said: T`` (``T`` cut to 200 characters); with images, ``I see an
  image. You said: T`` (an image alone: ``I see an image.``);
- a user audio item (server VAD or ``input_audio_buffer.commit``): ``I heard N.N seconds of
  audio.``; the silence an idle timeout committed: ``Are you still there?``;
- a tool request, when tools are declared and ``tool_choice`` is not ``"none"``: ``call NAME``
  or ``call NAME with ARGS`` (``use``/``run`` work too; backticks allowed) gives a
  ``function_call`` for the function tool ``NAME``, or a call to an MCP server's tool ``NAME``
  (see ``mcp``). ``ARGS`` is a JSON object or ``key=value`` pairs separated by commas or "and"
  (numbers, ``true``/``false`` and quoted strings are typed). ``tool_choice: "required"`` or
  ``{"type": "function", "name": N}`` forces a call with the arguments found, else ``{}``;
- a ``function_call_output``: ``The NAME tool returned: OUTPUT``;
- an ``mcp_approval_response``: the approved MCP call and what it returned, or that it was not
  made;
- anything else: ``Hello from the local realtime server.``

Sessions and models, as strict as OpenAI: a session's model must be one the ``openai`` package
knows, not shut down (per the SDK's deprecation dates) and not a GPT-Live model; transcription
models likewise; refused with the API's error (``model_not_found``, ``invalid_model``,
``invalid_value``). ``session.type: "transcription"`` sessions run VAD and input transcription
only, and refuse ``response.create``. Client events are checked against the SDK's types
(``protocol.py``): missing, unknown or badly typed fields get the API's ``error`` events,
echoing the client's ``event_id``; so do the API's state errors
(``conversation_already_has_active_response``, ``response_cancel_not_active``,
``input_audio_buffer_commit_empty``, unknown item ids, ``cannot_update_voice``). At the
maximum session duration the session sends ``session_expired`` and closes. Session objects it
reports mask MCP servers' credentials.
"""

from __future__ import annotations

from .responder import parse_tool_arguments
from .session import Session, session_problem
from .state import (
    DEFAULT_INSTRUCTIONS,
    DEFAULT_MODEL,
    MAX_SESSION_SECONDS,
    AudioPlayer,
    default_session,
    effective_session,
    merge_session,
    model_problem,
    new_id,
)

__all__ = [
    "DEFAULT_INSTRUCTIONS",
    "DEFAULT_MODEL",
    "MAX_SESSION_SECONDS",
    "AudioPlayer",
    "Session",
    "default_session",
    "effective_session",
    "merge_session",
    "model_problem",
    "new_id",
    "parse_tool_arguments",
    "session_problem",
]
