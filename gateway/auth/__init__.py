"""Who is calling and what they may do: API keys, scopes, per-field access, tenancy checks, rate limits, and the watch that ends subscriptions whose key is refused."""
