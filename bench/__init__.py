"""Benchmark of KAN (pykan) against symbolic regression on a closed-form 1-D signal."""

__version__ = "0.1.0"
