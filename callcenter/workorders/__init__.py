"""Work orders (工单): every call leaves a record; field work is dispatched and followed to the end."""
