"""The workbench: experiments over prompts, settings and event flows, run headless.

``Experiment`` runs every variant of a session on every ``Scenario`` (text or recorded speech),
each run a session of its own over the kernel's WebSocket; ``check`` holds what a scenario may
expect; ``Results`` is the runs as objects, a table, a per-variant comparison and files.
"""

from . import checks as check
from .checks import Check
from .experiment import Case, Experiment, Scenario
from .results import Results, Run

__all__ = ["Case", "Check", "Experiment", "Results", "Run", "Scenario", "check"]
