"""The Dataflow flex template's entry point: template parameters become the CLI's flags."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from paircurate.pipeline.run import parse_args
from paircurate.schemas.config import ConfigError

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "dataflow"


def _load_main():
    spec = importlib.util.spec_from_file_location("flex_main", DEPLOY / "main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


main = _load_main()


@pytest.mark.parametrize(
    ("value", "flag"),
    [("true", "--text-only"), ("True", "--text-only"), ("false", "--no-text-only"),
     ("0", "--no-text-only"), ("yes", "--text-only")],
)  # fmt: skip
def test_a_boolean_parameter_becomes_its_flag(value, flag):
    assert main.dashed([f"--text_only={value}"]) == [flag]


def test_parameters_parse_into_the_job_config():
    argv = main.dashed(
        ["--input=gs://b/lists/*.parquet", "--output=gs://b/out", "--url_col=URL",
         "--text_only=true", "--near_duplicates=false", "--image_size=128",
         "--sdk_container_image=IMAGE", "--runner=DataflowRunner"]
    )  # fmt: skip
    config, beam_args = parse_args(argv)
    assert config.inputs.url_col == "URL"
    assert config.output.text_only is True
    assert config.dedup.near_duplicates is False
    assert config.image.image_size == 128
    assert beam_args == ["--sdk_container_image=IMAGE", "--runner=DataflowRunner"]


def test_a_boolean_parameter_with_another_value_is_refused():
    with pytest.raises(
        ConfigError, match="text_only=maybe: a boolean parameter takes true or false"
    ):
        main.dashed(["--text_only=maybe"])


def test_every_template_parameter_is_an_option_with_a_matching_check():
    metadata = json.loads((DEPLOY / "flex_template_metadata.json").read_text())
    flags = main.our_flags()
    for parameter in metadata["parameters"]:
        assert parameter["name"] in flags, parameter["name"]
        if flags[parameter["name"]]:
            assert parameter["regexes"] == ["^(true|false)$"], parameter["name"]
