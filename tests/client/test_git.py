"""The user's git, set up for shipway: git's credential protocol as `shipway git-credential`
speaks it, the helper as git's own config runs it, and the remote `apps create` adds."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shipway.client import git
from shipway.client.login import save_login
from tests.helpers import git as git_in

URL = "http://localhost:8080"
TOKEN = "swt_the-secret"
SERVERS = [(URL, TOKEN), ("https://shipway.example.com", "swt_remote")]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user with a home of their own: an empty global git config, no server, no login."""
    home = tmp_path / "home"
    home.mkdir()
    for key in ("SHIPWAY_URL", "SHIPWAY_TOKEN", "SHIPWAY_DATA", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("GIT_CONFIG_GLOBAL", raising=False)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("HOME", str(home))
    return home


def request(text: str) -> dict[str, str]:
    return git.read_request(io.BytesIO(text.encode()))


def test_a_request_is_key_value_lines_up_to_a_blank_line() -> None:
    assert request("protocol=http\nhost=localhost:8080\n\nprotocol=https\n") == {
        "protocol": "http",
        "host": "localhost:8080",
    }
    assert request("protocol=http\r\nhost=h\r\n") == {"protocol": "http", "host": "h"}
    assert request("nonsense\n=x\npath=a=b\nwwwauth[]=Basic realm=x\n") == {
        "path": "a=b",
        "wwwauth[]": "Basic realm=x",
    }
    assert git.read_request(io.BytesIO(b"host=\xff\xfe\nprotocol=http\n"))["protocol"] == "http"
    assert request("") == {}


@pytest.mark.parametrize(
    ("asked", "token"),
    [
        ("protocol=http\nhost=localhost:8080\n", TOKEN),
        ("protocol=HTTP\nhost=LocalHost:8080\nusername=shipway\npath=git/web.git\n", TOKEN),
        ("url=http://someone@localhost:8080/git/web.git\n", TOKEN),
        ("protocol=https\nhost=shipway.example.com\n", "swt_remote"),
        ("protocol=https\nhost=shipway.example.com:443\n", "swt_remote"),
    ],
)
def test_get_answers_for_the_server_shipway_knows(asked: str, token: str) -> None:
    assert git.answer(request(asked), SERVERS) == f"username=shipway\npassword={token}\n"


@pytest.mark.parametrize(
    "asked",
    [
        "protocol=http\nhost=localhost:8081\n",
        "protocol=https\nhost=localhost:8080\n",
        "protocol=http\nhost=127.0.0.1:8080\n",
        "protocol=http\nhost=github.com\n",
        "protocol=https\nhost=shipway.example.com.evil.com\n",
        "protocol=ssh\nhost=localhost:8080\n",
        "protocol=http\nhost=localhost:port\n",
        "host=localhost:8080\n",
        "",
    ],
)
def test_get_says_nothing_about_another_host(asked: str) -> None:
    assert git.answer(request(asked), SERVERS) == ""


def test_a_token_that_would_break_the_protocol_is_never_sent() -> None:
    asked = request("protocol=http\nhost=localhost:8080\n")
    assert git.answer(asked, [(URL, "swt_x\npassword=other")]) == ""


def helper(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """`shipway git-credential ARGS` as git runs it, for the user at HOME."""
    return subprocess.run(
        [sys.executable, "-m", "shipway", "git-credential", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "HOME": str(home)},
        timeout=60,
    )


def test_the_command_answers_get_for_the_saved_login_only(home: Path) -> None:
    save_login(URL, TOKEN)
    right = helper(home, "get", stdin="protocol=http\nhost=localhost:8080\n\n")
    assert (right.returncode, right.stdout, right.stderr) == (
        0,
        f"username=shipway\npassword={TOKEN}\n",
        "",
    )
    other = helper(home, "get", stdin="protocol=https\nhost=github.com\n\n")
    assert (other.returncode, other.stdout, other.stderr) == (0, "", "")


def test_the_forms_git_runs_answer_as_the_whole_cli_does(home: Path) -> None:
    """`git-credential [--data DIR] ACTION` is answered before the rest of the CLI loads; any
    other spelling (`--data=DIR`) goes through the whole CLI, with the same answer."""
    save_login(URL, TOKEN)
    asked = "protocol=http\nhost=localhost:8080\n\n"
    quick = helper(home, "--data", str(home / "no data"), "get", stdin=asked)
    whole = helper(home, f"--data={home / 'no data'}", "get", stdin=asked)
    assert quick.stdout == whole.stdout == f"username=shipway\npassword={TOKEN}\n"
    assert quick.stderr == whole.stderr == ""


@pytest.mark.parametrize("action", ["store", "erase", "capability"])
def test_store_and_erase_do_nothing(home: Path, action: str) -> None:
    save_login(URL, TOKEN)
    done = helper(home, action, stdin=f"protocol=http\nhost=localhost:8080\npassword={TOKEN}\n\n")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert helper(home, "get", stdin="protocol=http\nhost=localhost:8080\n").stdout


def test_store_after_each_push_loads_nothing_of_shipway_but_its_entry_point(home: Path) -> None:
    """git runs `store` after every push that used the token: it has nothing to do, so it
    costs no more than the interpreter's start."""
    probe = (
        "import sys; sys.argv = ['shipway', 'git-credential', 'store']; "
        "from shipway.cli import run; run(); "
        "print(sorted(m for m in sys.modules if m.startswith('shipway.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        input="protocol=http\nhost=localhost:8080\n\n",
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "HOME": str(home)},
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "['shipway.cli']\n", "")


@pytest.mark.parametrize(
    "stdin", ["garbage without equals\n\x00\n", "protocol=http\nhost=[::1\n", "=\n=\n", ""]
)
def test_bad_input_prints_nothing_and_no_traceback(home: Path, stdin: str) -> None:
    save_login(URL, TOKEN)
    done = helper(home, "get", stdin=stdin)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_a_broken_login_or_no_server_is_no_answer(home: Path) -> None:
    asked = "protocol=http\nhost=localhost:8080\n\n"
    assert helper(home, "get", stdin=asked).stdout == ""
    config = home / ".config" / "shipway" / "config.json"
    config.parent.mkdir(parents=True)
    config.write_text("[1, 2")
    done = helper(home, "get", stdin=asked)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def fill(url: str) -> subprocess.CompletedProcess[str]:
    """What git's own credential machinery finds for URL, as a push would ask it."""
    env = {k: v for k, v in os.environ.items() if k != "GIT_CONFIG_GLOBAL"}
    return subprocess.run(
        ["git", "credential", "fill"],
        input=f"url={url}\n\n",
        capture_output=True,
        text=True,
        env={**env, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": ""},
        cwd=env["HOME"],
        timeout=60,
    )


def test_git_runs_the_installed_helper_from_a_path_with_spaces(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    program = tmp_path / "a dir with 'quotes' and spaces" / "shipway"
    program.parent.mkdir()
    program.symlink_to(Path(sys.executable).parent / "shipway")
    monkeypatch.setattr(sys, "argv", [str(program), "login"])
    command = git.helper_command()
    assert command.startswith("!'") and command.endswith(" git-credential")
    save_login(URL, TOKEN)

    assert git.install_helper(URL, command, replace=True) is git.Helper.INSTALLED
    found = fill(f"{URL}/git/web.git")
    assert found.returncode == 0, found.stderr
    assert f"username=shipway\npassword={TOKEN}\n" in found.stdout
    assert git.install_helper(URL, command, replace=True) is git.Helper.PRESENT
    listed = (home / ".gitconfig").read_text()
    assert listed.count("helper") == 2 and TOKEN not in listed
    # Another host is not ours to answer: git is left to ask elsewhere (and here finds none).
    assert fill("https://github.com/someone/else.git").returncode != 0


def test_no_other_helper_is_asked_to_keep_the_token(home: Path, tmp_path: Path) -> None:
    """A `store` helper for every host would write the token to ~/.git-credentials in clear:
    the helper's section clears the list before it."""
    stored = tmp_path / "git-credentials"
    subprocess.run(
        ["git", "config", "--global", "credential.helper", f"store --file={stored}"], check=True
    )
    save_login(URL, TOKEN)
    assert git.install_helper(URL, git.helper_command(), replace=True) is git.Helper.INSTALLED
    found = fill(f"{URL}/git/web.git")
    assert f"password={TOKEN}" in found.stdout
    approved = subprocess.run(
        ["git", "credential", "approve"], input=found.stdout + "\n", text=True, check=True
    )
    assert approved.returncode == 0
    assert not stored.exists() or TOKEN not in stored.read_text()


def test_a_data_dir_is_named_to_the_helper(tmp_path: Path) -> None:
    assert git.helper_command(tmp_path / "my data").endswith(
        f"git-credential --data '{tmp_path / 'my data'}'"
    )


def test_a_helper_the_user_set_for_the_url_is_kept_unless_replacing(home: Path) -> None:
    key = f"credential.{URL}.helper"
    subprocess.run(["git", "config", "--global", key, "mine"], check=True)
    assert git.install_helper(URL, git.helper_command(), replace=False) is git.Helper.KEPT
    listed = subprocess.run(["git", "config", "--get-all", key], capture_output=True, text=True)
    assert listed.stdout == "mine\n"
    assert git.install_helper(URL, git.helper_command(), replace=True) is git.Helper.INSTALLED
    listed = subprocess.run(["git", "config", "--get-all", key], capture_output=True, text=True)
    assert listed.stdout == f"\n{git.helper_command()}\n"


def work_tree(path: Path) -> Path:
    path.mkdir()
    git_in(path, "init", "-q", "-b", "main")
    return path


def test_the_remote_is_added_kept_or_cleaned_never_taken_over(tmp_path: Path) -> None:
    repo = work_tree(tmp_path / "repo")
    url = git.remote_url(URL + "/", "web")
    assert url == "http://localhost:8080/git/web.git"
    assert git.in_work_tree(repo) and not git.in_work_tree(tmp_path)
    assert git.add_remote(repo, "shipway", url) == (git.Remote.ADDED, None)
    assert git.add_remote(repo, "shipway", url) == (git.Remote.PRESENT, url)
    assert git_in(repo, "remote", "get-url", "shipway").stdout.strip() == url

    with_token = f"http://shipway:{TOKEN}@localhost:8080/git/web.git"
    git_in(repo, "remote", "add", "old", with_token)
    assert git.add_remote(repo, "old", url) == (git.Remote.CLEANED, with_token)
    assert TOKEN not in (repo / ".git" / "config").read_text()

    elsewhere = "https://github.com/someone/web.git"
    git_in(repo, "remote", "add", "origin", elsewhere)
    assert git.add_remote(repo, "origin", url) == (git.Remote.TAKEN, elsewhere)
    assert git_in(repo, "remote", "get-url", "origin").stdout.strip() == elsewhere


def test_the_branch_to_push(tmp_path: Path) -> None:
    assert git.branch(work_tree(tmp_path / "main")) == "main"
    old = tmp_path / "old"
    old.mkdir()
    git_in(old, "init", "-q", "-b", "master")
    assert git.branch(old) == "master"
