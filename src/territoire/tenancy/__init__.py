"""Tenants (local authorities), communes, users, roles, sessions and API tokens."""
