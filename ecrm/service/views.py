"""Console pages of the service app."""
