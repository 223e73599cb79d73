"""Benchmark harness: the connector against its peers and its limits on one feed.

Entry point: ``python -m bench.run`` (``make bench``). See bench/README.md.
"""
