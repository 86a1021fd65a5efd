# dwbot container image.
#   docker build -t dwbot .
#   docker run --rm -v $PWD/bot.yaml:/etc/dwbot/bot.yaml:ro -v $PWD/rules:/etc/dwbot/rules:ro \
#              -v dwbot-state:/var/lib/dwbot -p 8080:8080 --env-file dwbot.env dwbot
# The config must set `server: {listen: 0.0.0.0:8080}` for the health check and /metrics.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
 && useradd --system --uid 10001 --no-create-home --home-dir /var/lib/dwbot dwbot \
 && mkdir -p /etc/dwbot/rules /var/lib/dwbot && chown dwbot /var/lib/dwbot
COPY rules /etc/dwbot/rules
ENV DWBOT_CONFIG=/etc/dwbot/bot.yaml \
    PYTHONUNBUFFERED=1
USER 10001
WORKDIR /var/lib/dwbot
VOLUME ["/var/lib/dwbot"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
ENTRYPOINT ["dwbot"]
CMD ["run"]
