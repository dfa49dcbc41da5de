"""The router: a host-based reverse proxy in front of the control plane and every app."""

from shipway.router.proxy import Router
from shipway.router.table import Route, RouteTable
from shipway.router.upstream import TcpUpstream, UnixUpstream, Upstream

__all__ = ["Route", "RouteTable", "Router", "TcpUpstream", "UnixUpstream", "Upstream"]
