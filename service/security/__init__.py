"""Transport security, authentication and authorization of the registry's gRPC API.

- `settings`: the INCIDENTS_TLS_*, INCIDENTS_AUTH* and INCIDENTS_ALLOW_PLAINTEXT settings, and
  the rule deciding whether a listen address may be served in plaintext or unauthenticated;
- `tls`: the server's credentials (TLS, or mutual TLS with required client certificates);
- `auth`: who is calling (bearer tokens, JWTs, client certificates) — checked per call by the
  registration-time wrapper of `service.api.handlers`;
- `roles`: the one table of which roles may call which RPC;
- `tokens`: `python -m service.security.tokens`, which makes and hashes bearer tokens.
"""
