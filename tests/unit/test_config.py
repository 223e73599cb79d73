"""Settings: YAML + env overrides, secrets only from env/files, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.config import ConfigError, Secret, load_settings


def test_defaults_load_without_file() -> None:
    s = load_settings(env={})
    assert s.kafka.topic_prefix == "sequence"
    assert s.sequence.api_key is None
    assert "fills" in s.sequence.stream_topics


def test_yaml_then_env_override(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("kafka:\n  bootstrap_servers: a:9092\n  partitions: 3\n"
                   "sequence:\n  stream_topics: [fills, orders]\n")
    s = load_settings(cfg, env={"SEQCONN__KAFKA__BOOTSTRAP_SERVERS": "b:9092",
                                "SEQCONN__SEQUENCE__STREAM_TOPICS": "[tca]"})
    assert s.kafka.bootstrap_servers == "b:9092"
    assert s.kafka.partitions == 3
    assert s.sequence.stream_topics == ("tca",)


def test_secret_from_env_and_file_never_printed(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("seq_live_filekey\n")
    s = load_settings(env={"SEQUENCE_API_KEY_FILE": str(key_file),
                           "KAFKA_SASL_PASSWORD": "hunter2"})
    assert s.sequence.api_key == Secret("seq_live_filekey")
    assert s.sequence.api_key is not None and s.sequence.api_key.reveal() == "seq_live_filekey"
    assert "seq_live_filekey" not in repr(s) and "hunter2" not in repr(s)
    assert "hunter2" not in f"{s.kafka}"


@pytest.mark.parametrize(
    ("yaml_text", "env", "needle"),
    [
        ("kafka:\n  partitions: many\n", {}, "kafka.partitions: expected an integer"),
        ("kafka:\n  bootstrap: x\n", {}, "kafka.bootstrap: unknown key"),
        ("kafkaa:\n  x: 1\n", {}, "kafkaa: unknown section"),
        ("sequence:\n  api_key: seq_live_x\n", {}, "secrets are not read from config"),
        ("sequence:\n  base_url: ftp://x\n", {}, "sequence.base_url"),
        ("kafka:\n  producer: {sasl.password: x}\n", {}, "secrets are not read from config"),
        ("", {"SEQCONN__OBSERVE__LOG_FORMAT": "xml"}, "observe.log_format"),
        ("", {"SEQCONN__BAD": "1"}, "expected SEQCONN__<SECTION>__<KEY>"),
        ("[1, 2]\n", {}, "must hold a mapping"),
    ],
)
def test_bad_config_fails_with_one_clear_line(
    tmp_path: Path, yaml_text: str, env: dict[str, str], needle: str
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml_text)
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, env=env)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)
    assert "seq_live_x" not in str(err.value)


def test_missing_file_is_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml", env={})
