"""The package version (one place; importable from any layer)."""

__version__ = "0.1.0"
