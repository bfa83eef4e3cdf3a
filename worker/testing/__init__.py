"""The harness for tests, the bench and the demo; no production room imports it."""
