"""Calls: the record of every call and the engine that drives calls through IVR, queue and agent."""
