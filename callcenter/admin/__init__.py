"""The hotline's administration: agents, queues and users kept in the database, every change
audited and told to every engine sharing the hotline (see service.py)."""
