"""Connected platform identities: accounts and their sealed credentials, OAuth handshakes that become accounts, and token refresh."""
