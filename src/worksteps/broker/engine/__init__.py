"""The durable preparation engine: after ACCEPT, stage data, place it in the user's storage,
make the image available and start the Skaha session, then release it when the booking ends.

Invariants:
- every unit of work is a row in ``steps``; a step's external reference is committed before
  the step is polled, and a step caught between submitting and storing its reference
  (state SUBMITTING) is recovered by looking the operation up, never by blind resubmission;
- workers claim due steps with ``FOR UPDATE SKIP LOCKED`` and a lease, so broker replicas on
  one PostgreSQL share the work and a crashed worker's steps are taken over when its lease ends;
  a worker follows a claimed step in its own task while polls come quickly, and hands it back
  to the table (lease released) when they slow down;
- polling is per step and adaptive (fast first, then at the usual duration of the step's kind,
  backing off, with jitter: :mod:`worksteps.broker.engine.timing`);
- adapters report facts; only :mod:`worksteps.broker.engine.progress` moves phases, through
  :func:`worksteps.broker.lifecycle.transition`;
- every phase or progress change is appended to ``events``, numbered per session under the
  session's row lock so that readers never skip one; a transaction that changes a session
  and its steps takes the session's row first (the claim, which holds steps first, skips a
  session whose row is held instead of waiting for it).
"""
