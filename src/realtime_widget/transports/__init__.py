"""What carries a session's calls: the widget's page (browser.py); a WebSocket from the kernel."""
