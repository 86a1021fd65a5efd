"""`dwbot run`: wire config, pipeline, state, delivery and the Kafka consumer together."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

from confluent_kafka import Consumer, Producer

from bot.channels import Timeouts
from bot.config import LoadedConfig
from bot.consumer import KafkaRunner, RunSettings
from bot.deadletter import DeadLetterFile
from bot.delivery import Delivery
from bot.kafka import (
    DeadLetterTopic,
    KafkaStartupError,
    LibrdkafkaLog,
    check_connection,
    consumer_config,
    producer_config,
)
from bot.metrics import Metrics
from bot.pipeline import Pipeline
from bot.reload import Reloader
from bot.server import OpsServer
from bot.state import open_store

log = logging.getLogger("dwbot.run")


def run(loaded: LoadedConfig, *, stop: threading.Event | None = None,
        on_ready: Callable[[KafkaRunner], None] | None = None, install_signals: bool = True) -> int:
    """Consume until SIGTERM/SIGINT (or `stop`), then finish in-flight work, commit, exit 0."""
    config = loaded.config
    if not config.kafka.topics:
        log.error("kafka.topics is empty: nothing to consume")
        return 1
    metrics = Metrics()
    pipeline = Pipeline.load(loaded, metrics=metrics)
    metrics.loaded(len(pipeline.rules.ruleset.rules), "-")
    holder: list = []  # the runner, once it exists: readiness asks it
    store = open_store(config.state)
    server = None
    if config.server.listen:  # up first: /healthz answers while Kafka is still being reached
        server = OpsServer(config.server.listen, metrics, {
            "rules": lambda: (True, f"{len(holder[0].pipeline.rules.ruleset.rules) if holder else '?'} rule(s)"),
            "kafka": lambda: (bool(holder and holder[0].stats.assigned),
                              "joined the consumer group" if holder and holder[0].stats.assigned
                              else "not assigned yet"),
            "state": lambda: (store.ping(), config.state.split("://")[0] + "://"),
        }).start()
    kafka_log = LibrdkafkaLog()
    errors: list = []
    on_error: list[Callable] = [errors.append]  # until the runner exists, errors are kept for it
    consumer = Consumer(consumer_config(dict(config.kafka.config)) | {
        "logger": kafka_log, "error_cb": lambda error: on_error[0](error),
        "statistics.interval.ms": 15000, "stats_cb": metrics.librdkafka_stats})
    bootstrap = str(config.kafka.config.get("bootstrap.servers", "?"))
    try:
        check_connection(consumer, bootstrap, config.kafka.startup_timeout, kafka_log, config.kafka.topics)
    except KafkaStartupError as exc:
        log.error("%s", loaded.redact(str(exc)))
        consumer.close()
        store.close()
        if server:
            server.close()
        return 1
    dead_letters = DeadLetterFile(config.dead_letter.file, loaded.redact)
    dead_letters.on_write = metrics.dead_letters.inc
    dead_letter_topic = None
    if config.dead_letter.topic:
        producer = Producer(producer_config(dict(config.kafka.config)) | {"logger": kafka_log})
        dead_letter_topic = DeadLetterTopic(producer, config.dead_letter.topic)
        dead_letters.mirror = dead_letter_topic.record
    delivery = Delivery.build(config.channels, store, dead_letters, max_retry_time=config.delivery.max_retry_time,
                              timeouts=Timeouts(config.delivery.connect_timeout, config.delivery.read_timeout),
                              metrics=metrics)
    settings = RunSettings(topics=config.kafka.topics, max_in_flight=config.kafka.max_in_flight,
                           commit_interval=config.kafka.commit_interval,
                           shutdown_timeout=config.kafka.shutdown_timeout)
    runner = KafkaRunner(consumer, pipeline, delivery, dead_letters, settings, dead_letter_topic, metrics)
    holder.append(runner)
    reloader = Reloader(loaded.path, runner, metrics).start()
    metrics.loaded(len(pipeline.rules.ruleset.rules), reloader.fingerprint()[:12])
    on_error[0] = runner.on_error
    for error in errors:  # reported while connecting, before the runner existed
        runner.on_error(error)
    if stop is not None:
        threading.Thread(target=lambda: (stop.wait(), runner.stop.set()), daemon=True).start()
    if install_signals:
        def on_signal(signum, _frame) -> None:
            log.info("%s: finishing in-flight work (up to %.0fs), then exiting",
                     signal.Signals(signum).name, settings.shutdown_timeout)
            runner.stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGHUP, lambda _s, _f: reloader.requested.set())
    if on_ready:
        on_ready(runner)
    log.info("consuming %s from %s with %d rule(s), %d channel(s)", ", ".join(config.kafka.topics), bootstrap,
             len(pipeline.rules.ruleset.rules), len(config.channels))
    try:
        runner.run()
    finally:
        reloader.stop.set()
        delivery.close(abort=True)
        if server:
            server.close()
        if dead_letter_topic is not None:
            dead_letter_topic.close()
        store.close()
    if runner.fatal:
        log.error("%s", loaded.redact(runner.fatal))
        return 1
    return 0
