"""radmon: post-deployment monitoring for radiology ML models."""

__version__ = "0.1.0"
