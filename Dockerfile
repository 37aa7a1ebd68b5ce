# Flowbot: `docker build -t flowbot .` then
# `docker run -e FLASHALPHA_API_KEY -e SLACK_BOT_TOKEN -v flowbot-state:/data \
#            -v $PWD/flowbot.toml:/config/flowbot.toml:ro flowbot`
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY templates ./templates
RUN pip install --no-cache-dir build && python -m build --wheel --outdir /wheels

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 flowbot && mkdir -p /data /config \
    && chown flowbot:flowbot /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER flowbot
WORKDIR /data
# State (SQLite), the console JSONL and digest files live in the volume.
VOLUME ["/data"]
ENV FLOWBOT_CONFIG=/config/flowbot.toml \
    FLOWBOT_STATE__PATH=/data/flowbot.sqlite3 \
    PYTHONUNBUFFERED=1
STOPSIGNAL SIGTERM
ENTRYPOINT ["flowbot"]
CMD ["run"]
