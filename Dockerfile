# The panel's image: web (gunicorn), Celery worker and beat all run from it (docker-compose.yml).
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# The package and its pinned dependencies.
COPY pyproject.toml README.md ./
COPY panel panel
COPY servers servers
COPY servicplans servicplans
COPY provisioning provisioning
RUN pip install --no-cache-dir . && rm -rf build *.egg-info
# The rest of the tree, less what .dockerignore leaves out (.venv, .git, db.sqlite3, ...).
COPY . .
RUN SECRET_KEY=build-only-not-secret python manage.py collectstatic --no-input
# Run as an unprivileged user that owns nothing in /app.
RUN useradd --system --uid 1000 --no-create-home --home-dir /tmp panel \
    && mkdir -p /var/lib/panel/metrics && chown panel /var/lib/panel/metrics
USER panel
EXPOSE 8000
# No HEALTHCHECK here: the one image runs web, worker and beat, and each needs its own
# (docker-compose.yml).
CMD ["gunicorn", "panel.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3"]
