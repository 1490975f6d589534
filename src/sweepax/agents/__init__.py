"""Agents: networks (GRU, MLP), GAE, the PPO loss and ``make_train``."""
