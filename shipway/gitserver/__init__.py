"""git push over smart HTTP: git's own http-backend, a bare repo per app, a pre-receive hook
that hands the pushed tree to the deployments API and streams the build log back."""
