"""Where an app environment is served: one host name per environment, under the base domain.

Production is `APP.BASE` and a preview `APP--ENV.BASE` ("--" cannot occur in an app name).
Apps of organizations other than the platform's own get the organization as a label, so two
tenants may both have an app called "web": `web.acme.BASE`, `web--feature.acme.BASE`.
"""

from __future__ import annotations

from shipway.apps.service import PRODUCTION
from shipway.store.tables import Organization


def hostname(app: str, environment: str, base_domain: str, organization: str | None = None) -> str:
    """The host of APP's ENVIRONMENT; ORGANIZATION is None for the platform's own apps."""
    label = app if environment == PRODUCTION else f"{app}--{environment}"
    return ".".join(part for part in (label, organization, base_domain.strip(".")) if part)


def url(host: str, port: int) -> str:
    return f"http://{host}:{port}" if port != 80 else f"http://{host}"


def label(organization: Organization | None) -> str | None:
    """The organization's label in hosts: None for the platform's own organization."""
    return None if organization is None or organization.is_admin else organization.name
