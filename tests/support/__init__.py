"""Test helpers that must stay independent of the connector's own stack."""
