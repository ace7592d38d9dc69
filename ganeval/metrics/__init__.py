"""Metric functions on features; each is pure and small, and the registry in ``registry`` names them."""
