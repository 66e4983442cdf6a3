"""Local stand-ins for outside services that notify talks to (a Web Push service)."""
