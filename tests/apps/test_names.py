import pytest

from shipway.apps.service import check_app_name
from shipway.errors import ValidationError


@pytest.mark.parametrize("name", ["a", "web", "my-app-2", "x" * 40, "0day"])
def test_good_names(name: str) -> None:
    assert check_app_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "Web", "my_app", "-app", "app-", "x" * 41, "a.b", "app--preview", "ünï", 42, None]
)
def test_bad_names_state_the_rule(name: object) -> None:
    with pytest.raises(ValidationError, match="lowercase DNS label of 1-40 characters"):
        check_app_name(name)
