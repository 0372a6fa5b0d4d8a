"""Developer tools (not shipped): code generation."""
