"""Talk to OpenAI's realtime voice models from a Jupyter notebook, with the kernel in charge."""

__version__ = "0.1.0"

__all__ = ["__version__"]
