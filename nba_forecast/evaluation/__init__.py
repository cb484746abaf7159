"""Forecast evaluation: point and interval metrics, paired tests."""
