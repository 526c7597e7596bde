"""H2: a registry alias ``models:/NAME@ALIAS`` never names ``.`` or ``..`` (nor a name with ``/``): the pure
parser refuses them with one usage error, before any path is made from them."""

from __future__ import annotations

import pytest

from tuxai.errors import UsageError
from tuxai.lifecycle.deploy import ModelAlias, parse_model_uri


@pytest.mark.parametrize(
    "uri", ["models:/..@champion", "models:/.@champion", "models:/a/b@champion", "models:/../x@champion",
            "models:/digits@..", "models:/digits@."]
)  # fmt: skip
def test_H2_a_model_uri_never_names_dot_or_dotdot(uri: str) -> None:
    with pytest.raises(UsageError) as refused:
        parse_model_uri(uri)
    assert refused.value.message == f"{uri!r} is not a registry alias"


def test_H2_names_with_dots_inside_still_pass() -> None:
    assert parse_model_uri("models:/my.model..v2@champion.1") == ModelAlias("my.model..v2", "champion.1")
