"""What every wing shares and nothing else: ids, the clock, errors and their HTTP shape, pagination, logs, locks, the request context and background tasks. It imports no other wing."""
