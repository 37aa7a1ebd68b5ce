# Flowbot: `docker build -t flowbot .` then
# `docker run -e FLASHALPHA_API_KEY -e SLACK_BOT_TOKEN -v flowbot-state:/data \
#            -v $PWD/flowbot.toml:/config/flowbot.toml:ro flowbot`
# A local try-out with the sandbox: `docker compose up` (see compose.yaml).
# Targets: the last stage (default) is the production image; `--target sandbox` adds the
# `sim` extra (starlette, uvicorn) for `flowbot sim` / `flowbot demo`.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/flowbot
ENV PATH=/opt/flowbot/bin:$PATH
WORKDIR /src
# Dependencies first, in their own layer: it is rebuilt only when pyproject.toml changes,
# not on every source edit.
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies']), file=open('requirements.txt', 'w')); \
print('\n'.join(p['optional-dependencies']['sim']), file=open('requirements-sim.txt', 'w'))" \
    && pip install -r requirements.txt
COPY README.md ./
COPY templates ./templates
COPY bot ./bot
RUN pip install --no-deps . && flowbot --version

# `docker build --target sandbox -t flowbot-sandbox .`: the FlashAlpha sandbox for try-outs.
FROM python:3.11-slim AS sandbox
COPY --from=build /opt/flowbot /opt/flowbot
COPY --from=build /src/requirements-sim.txt /tmp/requirements-sim.txt
RUN /opt/flowbot/bin/pip install --no-cache-dir --disable-pip-version-check \
        -r /tmp/requirements-sim.txt \
    && useradd --uid 10001 flowbot
ENV PATH=/opt/flowbot/bin:$PATH PYTHONUNBUFFERED=1
USER flowbot
EXPOSE 8765
ENTRYPOINT ["flowbot", "sim", "--host", "0.0.0.0", "--port", "8765"]

# The production image: the bot without the sandbox's server packages.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 flowbot && mkdir -p /data /config \
    && chown flowbot:flowbot /data
COPY --from=build /opt/flowbot /opt/flowbot
USER flowbot
WORKDIR /data
# State (SQLite), the console JSONL and digest files live in the volume.
VOLUME ["/data"]
ENV PATH=/opt/flowbot/bin:$PATH \
    FLOWBOT_CONFIG=/config/flowbot.toml \
    FLOWBOT_STATE__PATH=/data/flowbot.sqlite3 \
    PYTHONUNBUFFERED=1
# /healthz answers while the process is alive ([http] listen, default 127.0.0.1:9464; the
# check runs inside the container, so loopback is enough).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=4)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["flowbot"]
CMD ["run"]
