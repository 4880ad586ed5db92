# The engine (and transcription workers): Python with espeak-ng, sox and ffmpeg for prompts
# and playback copies. Asterisk has its own image (asterisk/Dockerfile).
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends espeak-ng sox libsox-fmt-all ffmpeg \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /srv/callcenter
COPY pyproject.toml README.md ./
COPY callcenter ./callcenter
COPY asterisk ./asterisk
RUN pip install --no-cache-dir .
CMD ["callcenter", "run", "--no-asterisk"]
