"""The webform channel."""
