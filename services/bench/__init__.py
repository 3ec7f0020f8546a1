"""drgwatch bench: the worker measured against its alternatives on the same workload."""
