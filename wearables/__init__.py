"""Wearables: tracker connections, sync, imports and manual entry (issue 3). Not built yet."""
