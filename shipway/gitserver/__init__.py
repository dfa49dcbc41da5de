"""git push over smart HTTP: git's own http-backend on a bare repo per app, and a pre-receive
hook that hands each pushed branch to the deployments API and streams the build log back."""
