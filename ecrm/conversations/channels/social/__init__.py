"""The social channel."""
