"""TF Serving's configuration messages, and parsing of its text-format configuration files.

`ModelServerConfig` comes from `tensorflow-serving-api`. That package does not ship
`BatchingParameters` (session_bundle_config.proto) or `MonitoringConfig` (monitoring_config.proto),
so they are declared here from TF Serving's published schema with the same package, message
names, field names, numbers and types; text and binary forms are therefore interchangeable with
the server's. Parsing is strict: a field TF Serving does not define is an error.
"""

from __future__ import annotations

import functools
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2

_F = descriptor_pb2.FieldDescriptorProto


def _field(name, number, type_, label=_F.LABEL_OPTIONAL, type_name=None):
    field = _F(name=name, number=number, type=type_, label=label)
    if type_name:
        field.type_name = type_name
    return field


@functools.cache
def _messages():
    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(wrappers_pb2.DESCRIPTOR.serialized_pb))
    batching = descriptor_pb2.FileDescriptorProto(
        name="kerasbrain/tensorflow_serving/session_bundle_config.proto", package="tensorflow.serving",
        syntax="proto3", dependency=["google/protobuf/wrappers.proto"])
    msg = batching.message_type.add(name="BatchingParameters")
    int64 = ".google.protobuf.Int64Value"
    msg.field.extend([
        _field("max_batch_size", 1, _F.TYPE_MESSAGE, type_name=int64),
        _field("batch_timeout_micros", 2, _F.TYPE_MESSAGE, type_name=int64),
        _field("max_enqueued_batches", 3, _F.TYPE_MESSAGE, type_name=int64),
        _field("num_batch_threads", 4, _F.TYPE_MESSAGE, type_name=int64),
        _field("thread_pool_name", 5, _F.TYPE_MESSAGE, type_name=".google.protobuf.StringValue"),
        _field("allowed_batch_sizes", 6, _F.TYPE_INT64, label=_F.LABEL_REPEATED),
        _field("pad_variable_length_inputs", 7, _F.TYPE_BOOL),
    ])
    pool.Add(batching)
    monitoring = descriptor_pb2.FileDescriptorProto(
        name="kerasbrain/tensorflow_serving/monitoring_config.proto", package="tensorflow.serving", syntax="proto3")
    prom = monitoring.message_type.add(name="PrometheusConfig")
    prom.field.extend([_field("enable", 1, _F.TYPE_BOOL), _field("path", 2, _F.TYPE_STRING)])
    mon = monitoring.message_type.add(name="MonitoringConfig")
    mon.field.extend([_field("prometheus_config", 1, _F.TYPE_MESSAGE, type_name=".tensorflow.serving.PrometheusConfig")])
    pool.Add(monitoring)
    get = message_factory.GetMessageClass
    return (get(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")),
            get(pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig")))


def BatchingParameters(**kwargs):  # noqa: N802 (a message class factory)
    return _messages()[0](**kwargs)


def MonitoringConfig(**kwargs):  # noqa: N802
    return _messages()[1](**kwargs)


class ConfigFileError(ValueError):
    """A serving configuration file does not parse as the message TF Serving expects."""


def _parse(path, message):
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot be read ({exc})") from exc
    try:
        return text_format.Parse(text, message)
    except text_format.ParseError as exc:
        raise ConfigFileError(f"{path}: not a valid {message.DESCRIPTOR.name} ({exc})") from exc


def parse_model_server_config(path):
    from tensorflow_serving.config import model_server_config_pb2

    return _parse(path, model_server_config_pb2.ModelServerConfig())


def parse_batching_parameters(path):
    return _parse(path, BatchingParameters())


def parse_monitoring_config(path):
    return _parse(path, MonitoringConfig())
