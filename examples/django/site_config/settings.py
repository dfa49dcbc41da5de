"""A small Django site on shipway: PostgreSQL from DATABASE_URL, a Redis cache from REDIS_URL."""

import os

import dj_database_url

SECRET_KEY = os.environ.get("SECRET_KEY", "example-only-not-secret")
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django.contrib.contenttypes", "notes"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "site_config.urls"
WSGI_APPLICATION = "site_config.wsgi.application"
USE_TZ = True

DATABASES = {"default": dj_database_url.config(conn_max_age=60, conn_health_checks=True)}
if "REDIS_URL" in os.environ:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
