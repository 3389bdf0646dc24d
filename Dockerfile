# The pipeline's image: the project and its locked dependencies installed at build time,
# never pip-installed when a container starts.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PATH="/app/.venv/bin:${PATH}"

WORKDIR /app
RUN pip install --no-cache-dir "uv==0.13.9"

# Dependencies first (cached while only the code changes), then the project itself.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --all-extras --no-install-project
COPY pipeline ./pipeline
COPY sql ./sql
COPY dags ./dags
COPY pipeline.example.toml ./
RUN uv sync --frozen --no-dev --all-extras

RUN useradd --create-home --uid 50000 pipeline && mkdir -p /app/data && chown pipeline /app/data
USER pipeline
VOLUME ["/app/data"]
ENTRYPOINT ["rfm-pipeline"]
CMD ["--help"]
