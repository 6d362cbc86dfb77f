"""The WebSocket side: the per-process hub, Redis fan-out between workers, and the socket routes."""
