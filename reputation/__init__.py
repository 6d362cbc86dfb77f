"""Reputation: ratings, the explained score, appeals decided by people, transparency reports."""
