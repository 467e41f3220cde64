"""What the benchmarks share: running the services under test as processes of their own."""
