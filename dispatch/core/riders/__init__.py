"""Rider accounts."""
