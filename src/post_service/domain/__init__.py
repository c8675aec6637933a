"""Posts and their rules. Standard library only: no I/O, no frameworks."""
