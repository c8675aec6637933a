"""The gRPC server: the Post servicer, health, reflection and interceptors."""
