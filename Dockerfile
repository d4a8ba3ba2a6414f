# One image for web, workers, beat and flower. GPU workers run it with the NVIDIA runtime and
# mount training/generation virtualenvs built for CUDA at SKYBOARD_TRAINING_VENV /
# SKYBOARD_GENERATION_VENV (see docs/deploy.md).
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap git curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml constraints.txt requirements-data.txt README.md ./
RUN pip install --no-cache-dir -c constraints.txt -e . \
    && pip install --no-cache-dir --no-deps -r requirements-data.txt
COPY . .
# Hashed, compressed static files (WhiteNoise's compressed manifest storage, skyboard/settings.py).
ENV SKYBOARD_VAR_DIR=/data STATIC_ROOT=/app/staticfiles SKYBOARD_STATIC_MANIFEST=1
RUN SECRET_KEY=build python manage.py collectstatic --noinput
EXPOSE 8000
CMD ["gunicorn", "skyboard.wsgi", "-b", "0.0.0.0:8000", "-w", "4", "--threads", "4"]
