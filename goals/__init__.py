"""Goals: personal wellness goals, progress, check-ins and milestones (issue 4). Not built yet."""
