"""Technology adapters implementing the service's ports."""
