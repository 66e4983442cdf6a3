"""Coach: cohort overview, check-in list, consent, rollups and exports (issue 8). Not built yet."""
