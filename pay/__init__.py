"""Pay: earnings statements per pay period, the hourly floor and its top-up, receipts, the public
pay report, and the patronage measure the dividend is shared by (docs/pay.md)."""
