# The bot (and the trainer profile): Python 3.11 with FluidSynth, ffmpeg and the GM soundfont.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TF_ENABLE_ONEDNN_OPTS=0 \
    TF_CPP_MIN_LOG_LEVEL=2

RUN apt-get update \
    && apt-get install -y --no-install-recommends fluidsynth ffmpeg fluid-soundfont-gm libopus0 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY lofi ./lofi
COPY music ./music
COPY training ./training
COPY serving ./serving
COPY db ./db
COPY bot ./bot
RUN pip install . && pip check

COPY data ./data
RUN useradd --create-home --uid 1000 lofi && mkdir -p /models /data/var /data/out && chown -R lofi /models /data
USER lofi

ENV MODELS_DIR=/models \
    OUT_DIR=/data/out \
    DATA_DIR=/app/data/corpus \
    CACHE_DIR=/data/var/cache \
    SOUNDFONT=/usr/share/sounds/sf2/FluidR3_GM.sf2

CMD ["lofi", "bot"]
