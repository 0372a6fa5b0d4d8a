"""gRPC servicers: validate the request, call one store operation, map the outcome."""
