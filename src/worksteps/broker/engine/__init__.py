"""The durable preparation engine: after ACCEPT, stage data, place it in the user's storage,
make the image available and start the Skaha session, then release it when the booking ends.

Invariants:
- every unit of work is a row in ``steps``; a step's external reference is committed before
  the step is polled, and a step caught between submitting and storing its reference
  (state SUBMITTING) is recovered by looking the operation up, never by blind resubmission;
- workers claim due steps with ``FOR UPDATE SKIP LOCKED`` and a lease, so broker replicas on
  one PostgreSQL share the work and a crashed worker's steps are taken over when its lease ends;
- polling is per step and adaptive (fast first, backing off, with jitter);
- adapters report facts; only :mod:`worksteps.broker.engine.progress` moves phases, through
  :func:`worksteps.broker.lifecycle.transition`;
- every phase or progress change is appended to ``events``.
"""
