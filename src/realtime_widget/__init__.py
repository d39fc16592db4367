"""Talk to OpenAI's realtime voice models from a Jupyter notebook, with the kernel in charge."""

from .auth import RealtimeAuthError
from .config import ConfigError, Endpoint
from .events import InvalidEventError
from .session.conversation import Conversation, Transcript
from .session.log import EventLog
from .session.metrics import Metrics
from .session.tools import Tool
from .widget import RealtimeWidget

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "Conversation",
    "Endpoint",
    "EventLog",
    "InvalidEventError",
    "Metrics",
    "RealtimeAuthError",
    "RealtimeWidget",
    "Tool",
    "Transcript",
    "__version__",
]
