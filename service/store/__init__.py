"""Event store adapters: the library's recorders extended with idempotency and batch appends."""
