"""Regenerate the Python code for protos/ into service/ (or into another directory).

Usage: python -m tools.gen_protos [OUTPUT_ROOT]

The proto path equals the import path (claudebench/v1/tasks.proto -> claudebench.v1.tasks_pb2), so the
generated modules import each other without any rewriting.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"


def proto_files() -> list[Path]:
    """Every .proto file under protos/, sorted so that the output is stable."""
    return sorted(PROTO_ROOT.rglob("*.proto"))


def generate(output_root: Path) -> None:
    """Write *_pb2.py, *_pb2.pyi and *_pb2_grpc.py for every proto file under output_root."""
    well_known = resources.files("grpc_tools") / "_proto"
    args = [
        "grpc_tools.protoc",
        f"--proto_path={PROTO_ROOT}",
        f"--proto_path={well_known}",
        f"--python_out={output_root}",
        f"--pyi_out={output_root}",
        f"--grpc_python_out={output_root}",
        *(str(p.relative_to(PROTO_ROOT)) for p in proto_files()),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def main() -> None:
    output_root = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "service"
    generate(output_root)


if __name__ == "__main__":
    main()
