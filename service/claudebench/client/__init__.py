"""Python clients of claudebench: `AsyncClient`, `Client` (blocking) and the `Worker` helper."""

from claudebench.client.async_client import AsyncClient
from claudebench.client.sync_client import Client
from claudebench.client.worker import Worker

__all__ = ["AsyncClient", "Client", "Worker"]
