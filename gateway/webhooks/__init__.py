"""Signed webhooks (Standard Webhooks): endpoints and their secrets, the durable outbox of deliveries
written with the events they carry, the dispatcher that delivers them with leases and a retry
ladder, and the deliveries log with replay.

This package's ``__init__`` imports nothing: ``gateway.events`` stages outbox rows through
``gateway.webhooks.outbox`` while it is itself being imported, and the dispatcher imports
``gateway.events`` back.
"""
