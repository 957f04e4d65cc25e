"""madbench: a benchmark harness for model autophagy (model collapse) in text LMs."""

__version__ = "0.1.0"
