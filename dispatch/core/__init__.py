"""The shared platform: settings, database, errors, auth and accounts, audit, pub/sub, geo,
observability and health. It imports no domain package."""
