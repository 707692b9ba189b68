"""Console pages of the portal app."""
