"""An experiment's settings: the config (pydantic), the named presets, `--set key=value` overrides."""
