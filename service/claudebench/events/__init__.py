"""The task event feed: one Redis reader per process, fanned out to every WatchTasks subscriber."""
