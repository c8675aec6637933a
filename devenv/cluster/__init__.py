"""A throwaway single-node Kubernetes cluster on this machine, for the tests in tests/cluster/."""
