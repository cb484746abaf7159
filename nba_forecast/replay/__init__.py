"""The replay: a simulated clock driving the deployed lifecycle and serving engine."""
