"""Workbench: build word norms with humans and LLMs together."""

__version__ = "0.1.0"
