"""Serving: HTTP API, live game feed, A/B routing, fallbacks, metrics."""
