"""`claudebench health`: one grpc.health.v1 Check, for people and for container health checks."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from claudebench.commands.connection import open_channel


def probe(args: argparse.Namespace) -> int:
    """Print the serving status; 0 when SERVING, 1 otherwise (or when the server does not answer)."""
    server, timeout_s = args.server, args.timeout
    with open_channel(args) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)  # the typeshed stub lacks its methods
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout_s)
        except grpc.RpcError as exc:
            print(f"{server}: no answer ({exc.code().name}: {exc.details()})", file=sys.stderr)
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{server}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1
