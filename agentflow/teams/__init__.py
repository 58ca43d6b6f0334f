"""Agents of agents: the supervisor and its modes, task agents made on the fly, conversations."""
