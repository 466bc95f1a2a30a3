"""Flag definitions (flagd JSON format), evaluation, OpenFeature provider."""

from shipyard.flags._fractional import bucket, fractional

__all__ = ["bucket", "fractional"]
