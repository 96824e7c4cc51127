# Mailbox Manager: one Streamlit process serving the app on port 8501.
#   docker build -t mailbox-manager .
#   docker run -p 8501:8501 -v mailbox-data:/data mailbox-manager
# A hosted (team) deployment does not keep state in /data: it sets
# MAILBOX_DATABASE_URL (PostgreSQL) and MAILBOX_ENCRYPTION_KEYS, and mounts
# .streamlit/secrets.toml ([auth], [access]) read-only; see README "Hosting for a team".
FROM python:3.11-slim

# No .pyc files in a read-only app dir; logs reach `docker logs` at once.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The app runs as this unprivileged user; a numeric UID lets Kubernetes' runAsNonRoot
# verify it.
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app app

WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

# The code stays owned by root: the app user can read it, not change it.
COPY . .

# Embedded mode keeps SQLite (mailboxes.db) and the key file (secret.key) here.
# Mount a volume and back it up: without secret.key the stored secrets are lost.
# Hosted mode sets MAILBOX_DATABASE_URL and MAILBOX_ENCRYPTION_KEYS instead.
RUN mkdir /data && chown app:app /data && chmod 0700 /data
VOLUME /data

# Address and port as environment, not CMD flags: flags would win over anything the
# platform (or a test) sets. The rest of the settings is in .streamlit/config.toml.
ENV MAILBOX_DATA_DIR=/data \
    STREAMLIT_SERVER_ADDRESS=0.0.0.0 \
    STREAMLIT_SERVER_PORT=8501

EXPOSE 8501

USER 10001:10001

# slim has no curl: ask the health endpoint with urllib (no proxy), honouring
# STREAMLIT_SERVER_PORT and STREAMLIT_SERVER_BASE_URL_PATH. Any error exits 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request as r; port = os.environ.get('STREAMLIT_SERVER_PORT') or '8501'; base = os.environ.get('STREAMLIT_SERVER_BASE_URL_PATH', '').strip('/'); url = f'http://127.0.0.1:{port}/' + (base + '/' if base else '') + '_stcore/health'; sys.exit(0 if r.build_opener(r.ProxyHandler({})).open(url, timeout=4).read() == b'ok' else 1)"]

# No file watcher in production: the code does not change under a running container.
CMD ["streamlit", "run", "streamlit_app.py", "--server.fileWatcherType=none"]
