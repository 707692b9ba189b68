import pytest


@pytest.fixture(autouse=True)
def _analytics_files_in_tmp(settings, tmp_path):
    """Runs write the pivot's Parquet files under VAR_DIR/analytics: keep tests' files out of var/."""
    settings.VAR_DIR = tmp_path
