"""docker-compose.yml: valid against the Compose spec, and consistent with what the code expects."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from lofi.settings import Settings
from serving import contract

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "tests" / "fixtures" / "compose" / "compose-spec.json"


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _flags(service) -> dict[str, str]:
    return dict(a.removeprefix("--").split("=", 1) for a in service["command"])


def test_valid_against_the_compose_spec(compose):
    jsonschema.validate(compose, json.loads(SCHEMA.read_text()))


def test_serving_is_real_tf_serving_on_the_settings_port(compose):
    serving = compose["services"]["serving"]
    assert re.fullmatch(r"tensorflow/serving:2\.\d+\.\d+", serving["image"])
    flags = _flags(serving)
    port = Settings().serving_port
    assert flags["port"] == str(port) and f"127.0.0.1:{port}:{port}" in serving["ports"]
    assert f"127.0.0.1:{flags['rest_api_port']}:{flags['rest_api_port']}" in serving["ports"]
    assert flags["model_config_file"] == f"/models/{contract.MODELS_CONFIG}"
    assert flags["enable_batching"] == "true"
    assert {"model_config_file_poll_wait_seconds", "file_system_poll_wait_seconds"} <= set(flags)


def test_healthcheck_asks_for_member_zero(compose):
    test = " ".join(compose["services"]["serving"]["healthcheck"]["test"])
    assert f"/v1/models/{contract.model_name(0)}" in test and "8501" in test


def test_batching_config_is_mounted_and_well_formed(compose):
    serving = compose["services"]["serving"]
    target = _flags(serving)["batching_parameters_file"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in serving["volumes"]}
    text = (ROOT / mounts[target]).read_text()
    fields = dict(re.findall(r"^(\w+) \{ value: (\d+) \}$", text, re.M))
    assert {"max_batch_size", "batch_timeout_micros", "num_batch_threads", "max_enqueued_batches"} <= set(
        fields
    )
    # merged batches are padded to the sizes the warm-up compiled, the largest being the maximum batch
    allowed = tuple(int(x) for x in re.findall(r"^allowed_batch_sizes: (\d+)$", text, re.M))
    assert allowed == contract.BATCH_SIZES and allowed[-1] == int(fields["max_batch_size"])


def test_the_shipped_models_config_serves_the_shipped_members_in_tf_serving(compose):
    """A fresh clone's `docker compose up` finds a models.config that real TF Serving can load."""
    from training.export import models_config_text

    serving = compose["services"]["serving"]
    config_file = _flags(serving)["model_config_file"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in serving["volumes"]}
    mount = next(target for target in mounts if config_file.startswith(target + "/"))
    host_models = ROOT / mounts[mount].removeprefix("./")
    cfg = model_server_config_pb2.ModelServerConfig()
    text_format.Parse((host_models / config_file.removeprefix(mount + "/")).read_text(), cfg)
    members = cfg.model_config_list.config
    assert [c.name for c in members] == [contract.model_name(i) for i in range(len(members))]
    shipped = sorted(p.name for p in host_models.glob(f"{contract.MODEL_PREFIX}_*"))
    assert [c.name for c in members] == shipped
    for c in members:
        # the container's base path is the mounted host folder, which holds complete versions
        folder = host_models / c.base_path.removeprefix(mount + "/")
        assert c.base_path.startswith(mount + "/") and folder.is_dir()
        assert any((v / "saved_model.pb").is_file() for v in folder.iterdir() if v.name.isdigit())
        assert c.model_version_policy.latest.num_versions == 2
    # one source of truth: what `lofi train --config-base /models` writes for these members
    assert (host_models / contract.MODELS_CONFIG).read_text() == models_config_text(
        host_models, len(shipped), mount
    )


def test_bot_talks_to_serving_and_waits_for_it(compose):
    bot = compose["services"]["bot"]
    port = Settings().serving_port
    assert bot["environment"]["SERVING_ADDRESS"] == f"serving:{port}"
    assert "DATABASE_URL" in bot["environment"]
    assert bot["depends_on"]["serving"]["condition"] == "service_healthy"
    assert (ROOT / bot["build"]["dockerfile"]).is_file()
    assert any(v.endswith(":/models") for v in bot["volumes"])


def test_trainer_is_a_profile_writing_the_models_folder(compose):
    trainer = compose["services"]["trainer"]
    assert trainer["profiles"] == ["trainer"]
    cmd = trainer["command"]
    assert cmd[:2] == ["lofi", "train"] and cmd[cmd.index("--models") + 1] == "/models"


def test_no_service_publishes_a_port_beyond_loopback(compose):
    # TF Serving is unauthenticated (its ModelService reloads models): the host sees it on 127.0.0.1 only.
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            spec = port if isinstance(port, str) else f"{port.get('host_ip', '')}:{port.get('published')}"
            assert spec.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


@pytest.fixture(scope="module")
def scale():
    return yaml.safe_load((ROOT / "deploy" / "compose.scale.yml").read_text())


def test_the_scale_out_overlay_is_valid_and_runs_workers_on_a_durable_broker(compose, scale):
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(scale, schema)
    merged = {**compose["services"]}
    for name, service in scale["services"].items():
        merged[name] = {**merged.get(name, {}), **service}
    jsonschema.validate({"services": merged}, schema)
    redis, worker, bot = merged["redis"], merged["worker"], merged["bot"]
    assert (
        "--appendonly" in redis["command"]
        and redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    )
    assert worker["command"] == ["lofi", "worker"] and worker["deploy"]["replicas"] >= 2
    assert worker["environment"]["BROKER_URL"] == bot["environment"]["BROKER_URL"] == "redis://redis:6379/0"
    assert worker["environment"]["SERVING_ADDRESS"] == f"serving:{Settings().serving_port}"
    assert bot["environment"]["DATABASE_URL"].startswith("postgresql+asyncpg://")
    # the workers return the files in the job's result: they share no volume with the bot
    assert not set(worker.get("volumes", [])) & set(bot.get("volumes", []))
    for name in ("worker", "bot"):  # every variable is a setting the code reads (no typo goes unnoticed)
        assert all(key.lower() in Settings.model_fields for key in merged[name]["environment"]), name
