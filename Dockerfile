FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY panel panel
COPY servers servers
COPY servicplans servicplans
COPY provisioning provisioning
RUN pip install --no-cache-dir .
COPY . .
RUN SECRET_KEY=build-only-not-secret python manage.py collectstatic --no-input
RUN useradd --system --uid 1000 panel
USER panel
EXPOSE 8000
CMD ["gunicorn", "panel.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3"]
