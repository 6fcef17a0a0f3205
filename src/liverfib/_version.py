"""The package version, in a module of its own so that any floor can read it without importing the
API (``liverfib/__init__.py`` exports the API lazily)."""

__version__ = "0.1.0"
