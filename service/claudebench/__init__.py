"""claudebench: a gRPC service that coordinates distributed work on Redis with atomic Lua scripts."""

__version__ = "0.1.0"
