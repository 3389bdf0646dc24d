# The image of the pipeline and of its Airflow deployment (docker-compose.yml): the
# project and exactly the dependencies uv.lock pins (Airflow 3.3.2 included) are
# installed at build time, never pip-installed when a container starts.
#
# Based on python:3.11-slim rather than apache/airflow: the install step is one script,
# scripts/install-image.sh, that tests/deploy/test_dockerfile.py also runs outside Docker
# (docs/deploy.md says why).
ARG PYTHON_IMAGE=python:3.11-slim

# --- build: the virtualenv /app/.venv, made by uv from uv.lock -----------------------
FROM ${PYTHON_IMAGE} AS build
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1
RUN pip install --no-cache-dir "uv==0.13.9"
WORKDIR /src
# Dependencies first (a cached layer while only the code changes), then the project.
COPY scripts/install-image.sh scripts/install-image.sh
COPY pyproject.toml uv.lock README.md ./
RUN bash scripts/install-image.sh --deps-only /app/.venv
COPY pipeline pipeline
COPY sql sql
RUN bash scripts/install-image.sh /app/.venv

# --- runtime: the virtualenv, the DAGs, no build tools -------------------------------
FROM ${PYTHON_IMAGE}
# USER and HOME: a container may run as another uid (AIRFLOW_UID, group 0) with no
# passwd entry; Airflow asks for a user name and a writable home.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH="/app/.venv/bin:${PATH}" \
    USER=pipeline \
    HOME=/home/pipeline \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/app/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False

# The folders the containers write, owned by uid 50000 and writable by group 0 (as in
# Airflow's own image), so named volumes start with the right owner.
RUN useradd --create-home --home-dir /home/pipeline --uid 50000 --gid 0 pipeline \
    && mkdir -p /app/data/incoming /app/data/lake /app/data/state /app/data/published \
        /app/data/models /app/data/alerts /app/data/demo /opt/airflow/logs \
    && chown -R 50000:0 /app/data /opt/airflow /home/pipeline \
    && chmod -R g+rwX /app/data /opt/airflow /home/pipeline

COPY --from=build /app/.venv /app/.venv
COPY dags /app/dags
COPY pipeline.example.toml /app/pipeline.example.toml

# Relative paths of the default settings resolve here: data/lake is /app/data/lake.
WORKDIR /app
USER 50000
ENTRYPOINT ["rfm-pipeline"]
CMD ["--help"]
