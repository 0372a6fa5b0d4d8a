"""Client commands of the `claudebench` CLI."""
