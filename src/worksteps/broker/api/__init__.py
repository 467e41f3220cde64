"""The broker's HTTP API: the IVOA ExecutionBroker v1.0 routes and the component URLs."""
