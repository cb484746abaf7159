"""Lifecycle steps; each is a plain function a KFP component can wrap."""
