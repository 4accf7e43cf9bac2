"""socialgate's test suite (a package, so tests/providers never shadows the SDK package)."""
