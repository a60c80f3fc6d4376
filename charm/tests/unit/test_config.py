"""Unit tests of the pure config parsing in src/config.py."""

import pytest

from config import (
    CharmConfig,
    ConfigError,
    consumer_group_prefix_problem,
    kafka_roles,
    parse_config,
    topic_name_problem,
)

DEFAULTS = {
    "role": "consumer",
    "topic_name": "test-topic",
    "partitions": 5,
    "replication_factor": 1,
    "num_messages": 1000,
    "consumer_group_prefix": "",
    "rate": 2.0,
}


def test_defaults_parse_to_the_original_charm_defaults():
    assert parse_config(DEFAULTS) == CharmConfig(
        role="consumer",
        topic_name="test-topic",
        partitions=5,
        replication_factor=1,
        num_messages=1000,
        consumer_group_prefix="",
        rate=2.0,
    )


def test_missing_options_fall_back_to_defaults():
    # Older Juju/config without the new 'rate' or unset consumer_group_prefix.
    cfg = parse_config({"role": "producer"})
    assert cfg.role == "producer"
    assert cfg.rate == 2.0
    assert cfg.consumer_group_prefix == ""


def test_tutorial_config_is_valid():
    cfg = parse_config(
        DEFAULTS
        | {"role": "producer", "topic_name": "spark-streaming-store", "num_messages": 100000}
    )
    assert (cfg.role, cfg.topic_name, cfg.num_messages) == (
        "producer",
        "spark-streaming-store",
        100000,
    )


def test_integer_rate_becomes_float_and_strings_are_stripped():
    cfg = parse_config(
        DEFAULTS | {"rate": 3, "topic_name": " t1 ", "consumer_group_prefix": " g- "}
    )
    assert cfg.rate == 3.0 and isinstance(cfg.rate, float)
    assert cfg.topic_name == "t1"
    assert cfg.consumer_group_prefix == "g-"


@pytest.mark.parametrize(
    "option,value,reason",
    [
        ("role", "admin", "must be one of producer, consumer"),
        ("role", "", "must be one of producer, consumer"),
        ("topic_name", "", "must not be empty"),
        ("topic_name", "bad topic", "may only contain"),
        ("topic_name", "*all", "may only contain"),
        ("topic_name", "..", "must not be '.' or '..'"),
        ("topic_name", "x" * 250, "at most 249"),
        ("partitions", 0, "must be at least 1"),
        ("partitions", -3, "must be at least 1"),
        ("partitions", "5", "must be an integer"),
        ("replication_factor", 0, "must be at least 1"),
        ("num_messages", -1, "must be at least 0"),
        ("num_messages", True, "must be an integer"),
        ("consumer_group_prefix", "bad prefix", "may only contain"),
        ("consumer_group_prefix", "*", "may only contain"),
        ("rate", 0, "must be a positive number"),
        ("rate", -1.5, "must be a positive number"),
        ("rate", float("inf"), "must be a positive number"),
        ("rate", "fast", "must be a number"),
    ],
)
def test_invalid_values_name_the_option_and_reason(option, value, reason):
    with pytest.raises(ConfigError) as err:
        parse_config(DEFAULTS | {option: value})
    assert err.value.option == option
    assert reason in err.value.reason
    assert str(err.value).startswith(f"invalid config option '{option}': ")


def test_num_messages_zero_means_unbounded_and_is_valid():
    assert parse_config(DEFAULTS | {"num_messages": 0}).num_messages == 0


def test_kafka_roles_is_only_the_apps_role_never_admin():
    assert kafka_roles("producer") == "producer"
    assert kafka_roles("consumer") == "consumer"
    with pytest.raises(ValueError):
        kafka_roles("admin")
    with pytest.raises(ValueError):
        kafka_roles("producer,admin")


def test_topic_prefix_grant_defaults_on_and_must_be_boolean():
    assert parse_config({}).topic_prefix_grant is True
    assert parse_config({"topic_prefix_grant": False}).topic_prefix_grant is False
    with pytest.raises(ConfigError, match="'topic_prefix_grant'"):
        parse_config({"topic_prefix_grant": "yes"})


def test_topic_name_problem():
    assert topic_name_problem("spark-streaming-store") is None
    assert topic_name_problem("a.b_c-D9") is None
    assert topic_name_problem("x" * 249) is None
    assert topic_name_problem("é") is not None


def test_consumer_group_prefix_problem_allows_empty():
    assert consumer_group_prefix_problem("") is None
    assert consumer_group_prefix_problem("relation-7-") is None
    assert consumer_group_prefix_problem("a b") is not None
