"""parbench: benchmark parallel-Python backends on real workloads, honestly."""

__version__ = "0.1.0"
