"""Organisations, projects, keys, budgets and plans."""
