"""Tests of the deployment: Dockerfile, docker-compose.yml, the standalone script."""
