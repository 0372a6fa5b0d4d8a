"""TLS credentials of the gRPC listener, from the PEM files of the settings."""

from __future__ import annotations

import grpc

from claudebench.config import Settings


def server_credentials(settings: Settings) -> grpc.ServerCredentials:
    """TLS from the PEM files of the settings; mutual TLS when a client CA is given."""
    if settings.tls_key_file is None:
        raise SystemExit("TLS needs both tls_cert_file and tls_key_file")
    assert settings.tls_cert_file is not None
    client_ca = settings.tls_client_ca_file.read_bytes() if settings.tls_client_ca_file else None
    return grpc.ssl_server_credentials(
        [(settings.tls_key_file.read_bytes(), settings.tls_cert_file.read_bytes())],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )
