"""Notify: Web Push, quiet hours, the daily budget and the inbox (issue 7). Not built yet."""
