"""Accounts and cohorts: members, coaches and admins, invites, sessions and reset links."""
