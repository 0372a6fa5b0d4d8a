"""The clients' channels: gRPC's own retry policy for the idempotent calls, a token and TLS."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypedDict, Unpack

import grpc

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


class Security(TypedDict, total=False):
    """How a client reaches a server that wants a token or TLS (every client takes these keywords).

    token: sent as `authorization: Bearer <token>` on every call, streams included, by gRPC's own
    access-token call credentials: over TLS, or in plain text to a loopback address only (gRPC's
    local credentials; a token is never sent in plain text over a network).
    tls: TLS with the system's root certificates, or with `tls_ca` (a PEM file; implies TLS).
    tls_cert / tls_key: a client certificate and its key (PEM files), for a server that wants
    mutual TLS.
    """

    token: str | None
    tls: bool
    tls_ca: str | Path | None
    tls_cert: str | Path | None
    tls_key: str | Path | None


class ChannelError(ValueError):
    """Security that cannot make a channel (a file that cannot be read, a token in plain text over a
    network); the message is plain and never holds the token."""


_LOOPBACK = ("localhost", "127.0.0.1", "::1", "[::1]")


def _host(address: str) -> str:
    """The host of 'host:port', '[::1]:port' or a grpc target like 'ipv4:127.0.0.1:50051'."""
    for scheme in ("dns:///", "ipv4:", "ipv6:"):
        address = address.removeprefix(scheme)
    return address.rpartition(":")[0] if ":" in address and not address.endswith("]") else address


def _read(path: str | Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ChannelError(f"cannot read the {what} {str(path)!r}: {exc.strerror}") from None


def credentials(address: str, **security: Unpack[Security]) -> grpc.ChannelCredentials | None:
    """The channel credentials `security` asks for; None for a plain channel (no token, no TLS).
    ChannelError (a plain message) for a file that cannot be read or a token that would go out in
    plain text to a host that is not loopback."""
    token, ca = security.get("token"), security.get("tls_ca")
    cert, key = security.get("tls_cert"), security.get("tls_key")
    if (cert is None) != (key is None):
        raise ChannelError("a client certificate needs both tls_cert and tls_key")
    if security.get("tls") or ca is not None or cert is not None:
        channel: grpc.ChannelCredentials = grpc.ssl_channel_credentials(
            root_certificates=_read(ca, "TLS CA file"),
            private_key=_read(key, "TLS key file"),
            certificate_chain=_read(cert, "TLS certificate file"),
        )
    elif not token:
        return None
    elif address.startswith("unix:"):
        channel = grpc.local_channel_credentials(grpc.LocalConnectionType.UDS)
    elif _host(address) in _LOOPBACK:
        channel = grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
    else:
        raise ChannelError(
            f"a token is sent only over TLS or to a loopback address; {address} needs TLS (--tls)"
        )
    if token:
        channel = grpc.composite_channel_credentials(channel, grpc.access_token_call_credentials(token))
    return channel


def sync_channel(
    address: str, options: Sequence[tuple[str, Any]] = OPTIONS, **security: Unpack[Security]
) -> grpc.Channel:
    """A blocking channel to `address`, with the token and TLS of `security` (see Security)."""
    creds = credentials(address, **security)
    if creds is None:
        return grpc.insecure_channel(address, options=options)
    return grpc.secure_channel(address, creds, options=options)


def aio_channel(
    address: str, options: Sequence[tuple[str, Any]] = OPTIONS, **security: Unpack[Security]
) -> grpc.aio.Channel:
    """An asyncio channel to `address`, with the token and TLS of `security` (see Security)."""
    creds = credentials(address, **security)
    if creds is None:
        return grpc.aio.insecure_channel(address, options=options)
    return grpc.aio.secure_channel(address, creds, options=options)
