"""longtail: long-tailed visual recognition in PyTorch (BBN, PaCo and their baselines)."""

__version__ = "0.1.0"
