"""Builders: detect the stack, build dependency and app layers in a sandbox, write a release."""
