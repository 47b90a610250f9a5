"""Use cases. Each changes data and flushes; the caller (view, task, CLI) commits once."""
