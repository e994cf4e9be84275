"""todochat: the backend of an AI todo chatbot."""

__version__ = "0.1.0"
