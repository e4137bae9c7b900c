"""Unicorn: text-only synthesis of vision-language training data."""

__version__ = "0.1.0"
