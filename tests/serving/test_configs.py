"""The files in serving/ parse as the messages TF Serving reads; generated configs do too."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from kerasbrain.serving.protos import (
    BatchingParameters,
    ConfigFileError,
    parse_batching_parameters,
    parse_model_server_config,
    parse_monitoring_config,
)

SERVING = Path(__file__).resolve().parents[2] / "serving"


def test_shipped_models_config():
    config = parse_model_server_config(SERVING / "models.config")
    entry = config.model_config_list.config[0]
    assert entry.name == "tumor3d" and entry.base_path == "/models/tumor3d"
    assert list(entry.model_version_policy.specific.versions) == [1, 2]
    assert dict(entry.version_labels) == {"stable": 1, "canary": 2}


def test_shipped_batching_and_monitoring_configs():
    batching = parse_batching_parameters(SERVING / "batching.config")
    assert batching.max_batch_size.value == 8 and batching.batch_timeout_micros.value == 5000
    assert batching.num_batch_threads.value == 2 and batching.max_enqueued_batches.value == 16
    monitoring = parse_monitoring_config(SERVING / "monitoring.config")
    assert monitoring.prometheus_config.enable and monitoring.prometheus_config.path.startswith("/monitoring")


def test_batching_message_matches_tf_serving_wire_format():
    # field numbers of tensorflow.serving.BatchingParameters: max_batch_size = 1, num_batch_threads = 4
    message = BatchingParameters()
    message.max_batch_size.value = 3
    message.num_batch_threads.value = 2
    assert message.SerializeToString() == b"\x0a\x02\x08\x03\x22\x02\x08\x02"


@pytest.mark.parametrize("parser,text", [
    (parse_batching_parameters, "max_batch_size { value: 8 }\nmax_batch_sise { value: 1 }\n"),
    (parse_monitoring_config, "prometheus_config { enabled: true }\n"),
    (parse_model_server_config, "model_config_list { config { nme: 'x' } }\n"),
])
def test_files_tf_serving_would_reject_fail(tmp_path, parser, text):
    path = tmp_path / "bad.config"
    path.write_text(text)
    with pytest.raises(ConfigFileError, match="bad.config: not a valid"):
        parser(path)


def test_docker_compose_uses_the_shipped_files():
    compose = (SERVING / "docker-compose.yml").read_text()
    for flag in ("--model_config_file=/config/models.config", "--batching_parameters_file=/config/batching.config",
                 "--monitoring_config_file=/config/monitoring.config", "8500:8500", "8501:8501"):
        assert flag in compose


def test_serving_config_command(tmp_path):
    for name, versions in (("tumor3d", (1, 2, 3)), ("other", (4,))):
        for v in versions:
            (tmp_path / "saved_models" / name / str(v)).mkdir(parents=True)
    (tmp_path / "saved_models" / "tumor3d" / ".tmp-9-x").mkdir()
    out = tmp_path / "models.config"
    result = CliRunner().invoke(cli, ["serving", "config", "--saved-models", str(tmp_path / "saved_models"),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    config = parse_model_server_config(out)
    entries = {c.name: c for c in config.model_config_list.config}
    assert list(entries["tumor3d"].model_version_policy.specific.versions) == [2, 3]
    assert dict(entries["tumor3d"].version_labels) == {"stable": 2, "canary": 3}
    assert dict(entries["other"].version_labels) == {"stable": 4}
    assert entries["other"].base_path == "/models/other"
