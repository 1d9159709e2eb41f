"""lmbench: benchmark and profile Transformer LM steps, and explain the numbers."""

__version__ = "0.1.0"
