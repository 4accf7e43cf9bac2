"""Processing: a publish the platform accepted but has not finished (``providers.Processing``).

Why a state and not a wait: a video container can take minutes, and a call that sleeps through
them holds a worker slot and runs into its lease. So the outcome ``processing`` writes the
provider's handle, its stage, the deadline and the next check (``next_attempt_at``) on the
target and ends the call: the slot and the lease are free at once. When the check is due, the
scheduler claims the target exactly as a due one (same lease, attempt and fencing rules, same
slots) and ``calls`` asks ``Provider.poll`` with the stored handle, on whichever worker, even
after a restart: a target being polled is never uploaded again.

The rules here decide where a poll's answer leaves the target; ``outcomes.RetryPolicy.apply``
hands them every outcome of a target on this path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

PROCESSING_TIMEOUT = "PROCESSING_TIMEOUT"
# A poll's passing trouble: the target keeps waiting and is checked again later.
POLL_TROUBLE = ("rate_limited", "transient", "auth_expired")
# The soonest a check follows the last: a provider that says "check again now" every time would
# otherwise keep a worker slot busy claiming it until the deadline.
MIN_CHECK_INTERVAL = timedelta(seconds=1)


def is_polling(target: Any) -> bool:
    """Whether this target's call was a poll (it carries the handle of an earlier ``Processing``)."""
    return target.processing_handle is not None


@dataclass(frozen=True)
class Polled:
    """A target as it stood before its call's outcome: whether the call was a check, and what it showed.

    Checks run every few seconds for as long as a platform processes: each would otherwise tell
    subscribers and webhooks the same thing again (and flip the post to ``publishing`` and back).
    """

    polling: bool
    stage: str | None
    error_code: str | None

    @classmethod
    def of(cls, target: Any) -> Polled:
        return cls(is_polling(target), target.processing_stage, target.error_code)

    @property
    def status(self) -> str:
        """The target's status for people before this outcome: ``processing`` while it was being checked."""
        return "processing" if self.polling else "publishing"

    def unchanged(self, target: Any) -> bool:
        """Whether this outcome left the target as people saw it: still processing, same stage, same trouble."""
        return (
            self.polling and target.status == "processing"
            and (target.processing_stage, target.error_code) == (self.stage, self.error_code)
        )


def clear(target: Any) -> None:
    """Forget the processing state: the target left the path, and a retry uploads afresh."""
    target.processing_handle = target.processing_stage = target.processing_deadline = None
    target.processing_published = False


def wait(target: Any, outcome: Any, now: datetime, delay: timedelta) -> bool:
    """Apply a ``processing`` answer, or a poll's passing trouble (checked again after ``delay``);
    False when the outcome is neither, and the retry policy decides.

    A ``Processing`` answer stores its handle and stage and sets the deadline on the first one
    (counted from there, as the SDK promises). A poll that met a rate limit, a transient error or
    a refreshed token keeps waiting: the upload is on the platform, only the check is retried.
    Past the deadline, the target gives up (``timed_out``).
    """
    if outcome.kind == "processing" and outcome.processing is not None:
        answer = outcome.processing
        if not is_polling(target):
            target.processing_deadline = now + answer.deadline
        target.processing_handle = dict(answer.handle)
        target.processing_stage = answer.stage[:40]
        target.processing_published = bool(target.processing_published or answer.published)
        target.error_code = target.error_message = None
        delay = max(answer.check_after, MIN_CHECK_INTERVAL)
    elif not (is_polling(target) and outcome.kind in POLL_TROUBLE):
        return False
    deadline = target.processing_deadline
    if deadline is not None and now >= deadline:
        timed_out(target)
        return True
    target.status = "processing"
    target.next_attempt_at = now + delay if deadline is None else min(now + delay, deadline)
    return True


def timed_out(target: Any) -> None:
    """Past the deadline: failed, or ``unconfirmed`` when the platform already shows the post."""
    public = target.processing_published
    stage = target.processing_stage or "processing"
    target.status = "unconfirmed" if public else "failed"
    target.error_code = PROCESSING_TIMEOUT
    target.error_message = (
        f"The platform was still {stage} at the deadline."
        + (" The post was already public there, so it may exist; check it before retrying." if public else " Nothing was published.")
    )
    target.next_attempt_at = None
    clear(target)
