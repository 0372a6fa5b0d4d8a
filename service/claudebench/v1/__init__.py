"""Generated protobuf and gRPC code for claudebench.v1 (regenerate with `python -m tools.gen_protos`)."""
