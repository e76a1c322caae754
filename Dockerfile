# radmon: one image for every role (`radmon serve --role api|scheduler|dashboard`, `radmon db upgrade`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DO_NOT_TRACK=1

WORKDIR /app

# WeasyPrint (reports, decision 0600) needs Pango; DejaVu is the reports' embedded font.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

# Dependencies first, from pyproject.toml alone, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# The source tree stays in /app: monitor.migrate finds alembic.ini and migrations/ beside the package.
COPY . .
RUN pip install --no-deps -e . \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin radmon \
    && mkdir -p /data \
    && chown radmon /data

USER radmon
# The embedded default when no RADMON_DATABASE_URL is given: SQLite on a volume.
ENV RADMON_DATABASE_URL=sqlite:////data/radmon.db \
    RADMON_OUTBOX_DIR=/data/outbox
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"

CMD ["radmon", "serve", "--host", "0.0.0.0", "--port", "8000"]
