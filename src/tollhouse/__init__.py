"""Tollhouse: a self-hosted cost control plane for AI and cloud spend."""

__version__ = "0.1.0"
