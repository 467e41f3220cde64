"""The ``worksteps`` command."""
