"""Campaigns: named groups of posts, their pause that the engine's claim respects, cadence plans
with a dry run, bulk creation, CSV import and export.

``holds`` and ``membership`` import only storage, so the engine and the posts service can use
them without an import cycle; the rest builds on ``content`` and the engine's command door.
"""
