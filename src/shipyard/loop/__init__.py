"""Observe, act, evolve: incidents that become eval cases, and shadow replay of real traffic."""

__all__: list[str] = []
