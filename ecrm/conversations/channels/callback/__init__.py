"""The callback channel."""
