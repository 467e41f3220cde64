"""Worksteps: from data and software to a running interactive session at an SRCNet site."""
