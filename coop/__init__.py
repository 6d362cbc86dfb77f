"""The kernel every domain stands on: settings, database, errors, auth and tokens, rate limits,
audit, pub/sub, geo, observability, health and the migration environment. It imports no domain."""
