"""Safety, part of the feed: text screening, reports, blocks, mutes and the moderation queue."""
