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
from bot.pipeline import Pipeline
from bot.state import open_store

log = logging.getLogger("dwbot.run")


def run(loaded: LoadedConfig, *, stop: threading.Event | None = None,
        on_ready: Callable[[KafkaRunner], None] | None = None, install_signals: bool = True) -> int:
    """Consume until SIGTERM/SIGINT (or `stop`), then finish in-flight work, commit, exit 0."""
    config = loaded.config
    if not config.kafka.topics:
        log.error("kafka.topics is empty: nothing to consume")
        return 1
    pipeline = Pipeline.load(loaded)
    kafka_log = LibrdkafkaLog()
    errors: list = []
    on_error: list[Callable] = [errors.append]  # until the runner exists, errors are kept for it
    consumer = Consumer(consumer_config(dict(config.kafka.config)) | {
        "logger": kafka_log, "error_cb": lambda error: on_error[0](error)})
    bootstrap = str(config.kafka.config.get("bootstrap.servers", "?"))
    try:
        check_connection(consumer, bootstrap, config.kafka.startup_timeout, kafka_log, config.kafka.topics)
    except KafkaStartupError as exc:
        log.error("%s", loaded.redact(str(exc)))
        consumer.close()
        return 1
    store = open_store(config.state)
    dead_letters = DeadLetterFile(config.dead_letter.file, loaded.redact)
    dead_letter_topic = None
    if config.dead_letter.topic:
        producer = Producer(producer_config(dict(config.kafka.config)) | {"logger": kafka_log})
        dead_letter_topic = DeadLetterTopic(producer, config.dead_letter.topic)
        dead_letters.mirror = dead_letter_topic.record
    delivery = Delivery.build(config.channels, store, dead_letters, max_retry_time=config.delivery.max_retry_time,
                              timeouts=Timeouts(config.delivery.connect_timeout, config.delivery.read_timeout))
    settings = RunSettings(topics=config.kafka.topics, max_in_flight=config.kafka.max_in_flight,
                           commit_interval=config.kafka.commit_interval,
                           shutdown_timeout=config.kafka.shutdown_timeout)
    runner = KafkaRunner(consumer, pipeline, delivery, dead_letters, settings, dead_letter_topic)
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
    if on_ready:
        on_ready(runner)
    log.info("consuming %s from %s with %d rule(s), %d channel(s)", ", ".join(config.kafka.topics), bootstrap,
             len(pipeline.rules.ruleset.rules), len(config.channels))
    try:
        runner.run()
    finally:
        delivery.close(abort=True)
        if dead_letter_topic is not None:
            dead_letter_topic.close()
        store.close()
    if runner.fatal:
        log.error("%s", loaded.redact(runner.fatal))
        return 1
    return 0
