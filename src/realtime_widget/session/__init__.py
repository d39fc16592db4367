"""The session core: conversation, tools, turns, metrics, budgets and the event log, built from
a session's events with no UI and no transport (see docs/architecture.md)."""
