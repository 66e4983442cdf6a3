"""Feed: the live peer feed, cheers, comments, and safety (issues 5 and 6). Not built yet."""
