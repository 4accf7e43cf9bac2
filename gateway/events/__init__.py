"""Live events: the bus (in-process, or Redis Streams) subscribers listen on, the stored job and organization events, and the relay that carries them between processes.

Callers outside this wing import from ``gateway.events`` only; ``store``, ``bus`` and ``relay``
are its private modules (``tests/test_architecture.py`` holds every caller to it).
"""

from gateway.events.bus import (
    DEFAULT_QUEUE_SIZE,
    RESUME_EXPIRED,
    SLOW_CONSUMER,
    BusEvent,
    MemoryEventBus,
    Subscription,
    SubscriptionClosed,
    stream_position,
)
from gateway.events.kinds import EVENT_KINDS, UnknownEventKind
from gateway.events.redis_bus import RedisEventBus
from gateway.events.relay import StoredEventRelay, follow_job, follow_organization
from gateway.events.store import last_job_event_seq, record_job_event, record_org_event, seed_job_event_seqs, stored_job_events

__all__ = [
    "DEFAULT_QUEUE_SIZE",
    "EVENT_KINDS",
    "SLOW_CONSUMER",
    "BusEvent",
    "MemoryEventBus",
    "RESUME_EXPIRED",
    "RedisEventBus",
    "StoredEventRelay",
    "Subscription",
    "SubscriptionClosed",
    "UnknownEventKind",
    "follow_job",
    "follow_organization",
    "last_job_event_seq",
    "record_job_event",
    "record_org_event",
    "seed_job_event_seqs",
    "stored_job_events",
    "stream_position",
]
