"""Domain operations on Redis: each one builds the keys, runs one script, and returns its outcome."""
