"""Time-shaped views of publishing: posting queues (weekly slots per account, or the org's
default, in a timezone; ``queues``) and the calendar of local days with their targets and slots
(``days``)."""
