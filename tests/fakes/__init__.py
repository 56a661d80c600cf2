"""Fakes that stand in for the outside world in tests: real servers on 127.0.0.1."""
