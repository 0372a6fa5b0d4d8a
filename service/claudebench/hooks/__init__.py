"""Tool-use hooks: the rule engine and the stored per-tool configuration."""
