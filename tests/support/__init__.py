"""Helpers the test tiers share: free ports, real servers and clusters, `sgi` as a subprocess,
the tiny run every end-to-end test starts from, and tiny training data. Not tests themselves."""
