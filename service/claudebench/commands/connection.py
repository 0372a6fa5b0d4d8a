"""The flags of every command that talks to a server: a token and TLS (claudebench.client.channel).

`--token` defaults to $CLAUDEBENCH_TOKEN and is never printed (not in --help, not in errors);
`--tls-ca` to $CLAUDEBENCH_TLS_CA, the client certificate and key to $CLAUDEBENCH_TLS_CLIENT_CERT
and $CLAUDEBENCH_TLS_CLIENT_KEY, so that a Claude Code hook can take them from its environment.
"""

from __future__ import annotations

import argparse
import os

import grpc

from claudebench.client.channel import Security, sync_channel

_ENVIRONMENT = {
    "token": "CLAUDEBENCH_TOKEN",
    "tls_ca": "CLAUDEBENCH_TLS_CA",
    "tls_cert": "CLAUDEBENCH_TLS_CLIENT_CERT",
    "tls_key": "CLAUDEBENCH_TLS_CLIENT_KEY",
}


def add_flags(parser: argparse.ArgumentParser) -> None:
    """--token, --tls, --tls-ca, --tls-cert and --tls-key."""
    group = parser.add_argument_group("connection (a server with tokens or TLS)")
    group.add_argument("--token", help="bearer token (default $CLAUDEBENCH_TOKEN)")
    group.add_argument("--tls", action="store_true", help="TLS with the system's root certificates")
    group.add_argument("--tls-ca", metavar="FILE", help="TLS with this CA (PEM; default $CLAUDEBENCH_TLS_CA)")
    group.add_argument(
        "--tls-cert", metavar="FILE", help="client certificate for mutual TLS ($CLAUDEBENCH_TLS_CLIENT_CERT)"
    )
    group.add_argument("--tls-key", metavar="FILE", help="its private key (PEM; $CLAUDEBENCH_TLS_CLIENT_KEY)")


def security(args: argparse.Namespace) -> Security:
    """The flags' values, each flag not given taken from its environment variable."""

    def value(name: str) -> str | None:
        given: str | None = getattr(args, name, None)
        return given if given else os.environ.get(_ENVIRONMENT[name]) or None

    return Security(
        token=value("token"),
        tls=bool(getattr(args, "tls", False)),
        tls_ca=value("tls_ca"),
        tls_cert=value("tls_cert"),
        tls_key=value("tls_key"),
    )


def open_channel(args: argparse.Namespace) -> grpc.Channel:
    """A blocking channel to args.server with the token and TLS of the flags (no retry policy: the
    commands that use it say what went wrong themselves)."""
    return sync_channel(args.server, options=(), **security(args))
