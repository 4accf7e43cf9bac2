"""The plumbing of calls to platforms: the SSRF guard, the connection pool and its idle checks, and the garbage-collector policy that keeps their latency flat."""
