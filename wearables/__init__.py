"""Wearables: tracker connections and sync, imports, typed-in numbers, daily metrics.

Kept free of imports, so that a pure part (the importers, the records) loads without the app.
"""
