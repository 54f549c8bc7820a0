"""The pure energy ledger and performance figures: no database, no network, no clock."""
