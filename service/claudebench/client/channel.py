"""Channel options shared by the clients: gRPC's own retry policy for the idempotent calls."""

from __future__ import annotations

import json

# Calls that are safe to send again after UNAVAILABLE (a Redis failover, a server restart): reads,
# heartbeats, (re-)registration, and CompleteTask, which the server makes idempotent for the holder.
IDEMPOTENT = {
    "claudebench.v1.TaskService": ["GetTask", "ListTasks", "CompleteTask"],
    "claudebench.v1.SystemService": ["Register", "Heartbeat", "GetHealth", "GetState", "GetMetrics"],
}

SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{"service": service, "method": method} for method in methods],
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
            for service, methods in IDEMPOTENT.items()
        ]
    }
)

OPTIONS = [
    ("grpc.enable_retries", 1),
    ("grpc.service_config", SERVICE_CONFIG),
    # After a server restart, try the address again within a few seconds (gRPC's default backoff
    # grows to two minutes, which would keep a Worker idle long after the server is back).
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 3000),
]
