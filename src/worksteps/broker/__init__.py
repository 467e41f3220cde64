"""The Execution Broker of one site: the IVOA ExecutionBroker API over a capacity calendar.

Invariants:
- capacity is never overcommitted: every offer holds its resources in ``bookings`` until it
  is accepted (then booked), rejected, cancelled or expired (then released);
- phases change only through :func:`worksteps.broker.lifecycle.transition`;
- within one offer set at most one offer is ever ACCEPTED.
"""
