"""``python -m realtime_widget.local``: the same as ``realtime-widget serve``."""

from ..cli import main

if __name__ == "__main__":
    main(["serve", *__import__("sys").argv[1:]])
