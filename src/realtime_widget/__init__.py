"""Talk to OpenAI's realtime voice models from a Jupyter notebook, with the kernel in charge."""

from .config import ConfigError, Endpoint
from .events import InvalidEventError
from .providers.openai import RealtimeAuthError
from .session.budgets import BudgetExceeded
from .session.conversation import Conversation, Transcript
from .session.core import Reply, Request, Session
from .session.dispatch import CallEnded
from .session.log import EventLog
from .session.metrics import Metrics, Prices
from .session.tools import Tool
from .widget import RealtimeWidget
from .workbench import Experiment, Results, Scenario, check

__version__ = "0.1.0"

__all__ = [
    "BudgetExceeded",
    "CallEnded",
    "ConfigError",
    "Conversation",
    "Endpoint",
    "EventLog",
    "Experiment",
    "InvalidEventError",
    "Metrics",
    "Prices",
    "RealtimeAuthError",
    "RealtimeWidget",
    "Reply",
    "Request",
    "Results",
    "Scenario",
    "Session",
    "Tool",
    "Transcript",
    "__version__",
    "check",
]
