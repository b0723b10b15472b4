"""lamina-manage run as an operator runs it (a subprocess, in a directory of its own): without
a configuration it says which option to set and creates nothing; a SQLite file that does not
exist is named, and only `db sync` makes it."""

import os
import subprocess

import pytest

BIN = os.path.join(os.path.dirname(__file__), "..", "..", ".venv", "bin", "lamina-manage")


def manage(cwd, *args):
    # HOME inside cwd: no ~/.lamina/lamina.conf of the machine's is found
    env = dict(os.environ, HOME=str(cwd))
    return subprocess.run([BIN, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_no_configuration_names_the_option_and_creates_nothing(tmp_path):
    if os.path.exists("/etc/lamina/lamina.conf") or os.path.exists("/etc/lamina.conf"):
        pytest.skip("this machine has a system-wide lamina.conf")
    for command in (["service", "list"], ["pool", "list"], ["db", "sync"],
                    ["quota", "check"]):
        result = manage(tmp_path, *command)
        assert result.returncode == 2, result
        assert "--config-file" in result.stderr and "[database] connection" in result.stderr
        assert "Traceback" not in result.stderr
    assert os.listdir(tmp_path) == []


def test_a_missing_sqlite_file_is_named_and_db_sync_makes_it(tmp_path):
    database = tmp_path / "lamina.sqlite"
    conf = tmp_path / "lamina.conf"
    conf.write_text("[database]\nconnection = sqlite:///%s\n" % database)
    result = manage(tmp_path, "--config-file", str(conf), "pool", "list")
    assert result.returncode == 2 and str(database) in result.stderr, result
    assert not database.exists()
    result = manage(tmp_path, "--config-file", str(conf), "db", "sync")
    assert result.returncode == 0, result
    result = manage(tmp_path, "--config-file", str(conf), "pool", "list")
    assert result.returncode == 0 and "Pool" in result.stdout, result
