"""Tests of the feed's text screening."""
