"""Projections: read models built from the registry's log, exactly once and rebuildable.

Each projection folds events into rows and records the log position it reached in the same
transaction, so it resumes after a crash without counting anything twice or missing anything,
and can be dropped and rebuilt from the log at any time.
"""
