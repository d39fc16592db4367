"""Talking to providers with the standard key: OpenAI's Realtime calls (``openai.py``)."""
