"""Web: the aiohttp app factory, log-in and roles, one routes module per domain, websockets."""
