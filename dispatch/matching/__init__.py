"""Batched dispatch: candidates, costs and the min-cost assignment of requests to drivers."""
