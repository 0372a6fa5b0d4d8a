"""The HTTP side of the server: the dashboard page, a JSON API over the gRPC servicers, and
Server-Sent Events over the WatchTasks event hub (aiohttp, on the gRPC server's event loop)."""
