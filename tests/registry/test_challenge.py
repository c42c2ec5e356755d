"""WWW-Authenticate parsing and token scope arithmetic."""

from __future__ import annotations

from ocibuild.transports.registry._challenge import (
    Challenge,
    covers,
    merge_scopes,
    parse_challenges,
)


def test_bearer_challenge_with_quoted_commas() -> None:
    header = (
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:team/app:pull,push repository:team/base:pull"'
    )
    assert parse_challenges(header) == [
        Challenge(
            "bearer",
            "https://auth.example/token",
            "registry.example",
            ("repository:team/app:pull,push", "repository:team/base:pull"),
        )
    ]


def test_basic_and_several_challenges() -> None:
    header = 'Basic realm="reg", Bearer realm="https://a/t", service=svc, Negotiate'
    assert parse_challenges(header) == [
        Challenge("basic", "reg"),
        Challenge("bearer", "https://a/t", "svc"),
    ]
    assert parse_challenges("") == []
    assert parse_challenges('Basic realm="a \\"quoted\\" realm"') == [
        Challenge("basic", 'a "quoted" realm')
    ]


def test_merge_scopes_unions_actions_per_resource() -> None:
    merged = merge_scopes(
        ["repository:127.0.0.1:5000/app:push"],
        ["repository:127.0.0.1:5000/app:pull", "repository:base:pull"],
    )
    assert merged == ("repository:127.0.0.1:5000/app:pull,push", "repository:base:pull")


def test_covers() -> None:
    push = ["repository:app:pull,push"]
    assert covers(push, ["repository:app:pull"])
    assert not covers(["repository:app:pull"], push)
    assert not covers(push, ["repository:app:pull", "repository:base:pull"])
    assert covers(["registry:catalog:*"], ["registry:catalog:*"])
    assert covers(["repository:app:*"], push)
    assert covers(push, [])


def test_an_unterminated_quoted_value_is_not_cut_short() -> None:
    # It used to read as the value with its last character dropped: realm "https://a/toke".
    [challenge] = parse_challenges('Bearer realm="https://a/token')
    assert challenge.realm == ""
    [challenge] = parse_challenges('Bearer service="s",realm="https://a/token')
    assert (challenge.service, challenge.realm) == ("s", "")
