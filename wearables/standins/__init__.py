"""Local stand-in servers for the wearable platforms, speaking their real formats over real HTTP."""
