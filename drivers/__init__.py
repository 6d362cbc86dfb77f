"""Members of the co-op: drivers, their vehicles and their membership status."""
