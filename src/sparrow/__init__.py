"""Sparrow: build video-LLMs data-efficiently."""

__version__ = "0.1.0"
