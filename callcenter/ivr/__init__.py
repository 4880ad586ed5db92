"""IVR: the menu as data (model.py), the pure stepper the engine drives (flow.py), prompt audio (prompts.py)."""
