"""Driver positions: ingest from the sockets, bulk writes to PostGIS, presence and trip trails."""
