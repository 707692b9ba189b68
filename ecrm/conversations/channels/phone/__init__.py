"""The phone channel."""
