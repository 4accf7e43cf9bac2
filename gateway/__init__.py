"""socialgate's running service: settings, storage, domain services, engine, HTTP app and CLI."""

__version__ = "0.1.0"
