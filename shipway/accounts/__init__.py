"""Tenants (organizations), users, API tokens and the roles they carry."""
