"""Site adapters: one small Protocol per service family, a real adapter and a local one."""
