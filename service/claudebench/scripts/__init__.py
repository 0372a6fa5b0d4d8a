"""Lua scripts: the registry that reads them, the executor that runs them, their typed results."""
