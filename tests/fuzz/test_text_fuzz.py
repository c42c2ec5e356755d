"""Fuzzing the text parsers: WWW-Authenticate challenges, references, digests, ignore patterns.

References and challenges must parse or refuse; what parses must print back to itself. The
ignore-pattern automaton must agree with the backtracking regex it replaced on small cases
(where backtracking is harmless), so linear time changed no answer.
"""

from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st

from ocibuild._errors import OCIBuildError
from ocibuild.layer._glob import Glob
from ocibuild.layer._ignore import IgnoreRules
from ocibuild.oci import Digest, Platform, Reference
from ocibuild.transports.registry._challenge import (
    Challenge,
    covers,
    merge_scopes,
    parse_challenges,
)
from tests.fuzz._fuzz import FUZZ, parses_or_refuses

TOKEN_CHARS = 'abcBearer =",\\:/._-@'
params = st.lists(
    st.tuples(
        st.sampled_from(["realm", "service", "scope", "error", "Realm", "x"]),
        st.text(alphabet=TOKEN_CHARS + "é\t", max_size=12),
        st.booleans(),
    ),
    max_size=4,
)


@st.composite
def challenge_headers(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 3))):
        scheme = draw(st.sampled_from(["Bearer", "Basic", "bearer", "Digest", "", "B\u00e9"]))
        items = [f'{k}="{v}"' if quoted else f"{k}={v}" for k, v, quoted in draw(params)]
        parts.append(f"{scheme} " + draw(st.sampled_from([",", ", ", " "])).join(items))
    return ", ".join(parts)


@FUZZ
@given(header=challenge_headers() | st.text(max_size=200))
@example(header='Bearer realm="unterminated')
@example(header='Bearer realm="a\\')
@example(header="Bearer " + "a=b," * 2000)
def test_challenges(header: str) -> None:
    found = parses_or_refuses(lambda: parse_challenges(header))
    if isinstance(found, OCIBuildError):
        return
    assert all(isinstance(c, Challenge) and c.scheme in ("basic", "bearer") for c in found)
    scopes = [s for c in found for s in c.scopes]
    merged = merge_scopes(scopes)
    assert covers(merged, merge_scopes(scopes)) is True


quotable = st.text(st.characters(blacklist_categories=["Cs", "Cc"]), max_size=30)


@FUZZ
@given(
    realm=quotable,
    service=quotable,
    scopes=st.lists(st.from_regex(r"[a-z]+:[a-z/]+:pull", fullmatch=True), max_size=3),
)
@example(realm='a"b\\c', service="", scopes=[])
def test_quoted_challenge_values_read_back(realm: str, service: str, scopes: list[str]) -> None:
    def quoted(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    header = (
        f"Bearer realm={quoted(realm)},service={quoted(service)},scope={quoted(' '.join(scopes))}"
    )
    [challenge] = parse_challenges(header)
    assert (challenge.realm, challenge.service, challenge.scopes) == (realm, service, tuple(scopes))


reference_parts = st.text(alphabet="abcXY09._-/:@", max_size=40)


@FUZZ
@given(
    text=st.builds(
        lambda host, name, tag, digest: host + name + tag + digest,
        st.sampled_from(["", "localhost:5000/", "[::1]:5000/", "reg.io/", "docker.io/", "a:b/"]),
        reference_parts,
        st.sampled_from(["", ":v1", ":" + "t" * 130, ":"]),
        st.sampled_from(["", "@sha256:" + "a" * 64, "@sha256:abc", "@md5:x"]),
    )
    | st.text(max_size=300)
)
@example(text="docker://")
@example(text="[::1/x")
@example(text="a" * 300)
def test_references(text: str) -> None:
    ref = parses_or_refuses(lambda: Reference.parse(text))
    if isinstance(ref, Reference):
        assert Reference.parse(str(ref)) == ref
        _ = ref.api_host, ref.identifier, ref.is_loopback, ref.name


@FUZZ
@given(text=st.text(max_size=80))
@example(text="\n:")  # the message printed the newline raw: two lines
def test_digests_and_platforms(text: str) -> None:
    digest = parses_or_refuses(lambda: Digest.parse(text))
    if isinstance(digest, Digest):
        assert Digest.parse(str(digest)) == digest
    parses_or_refuses(lambda: Platform.parse(text))


def reference_regex(pattern: str) -> re.Pattern[str] | None:
    """The translation ocibuild used before the automaton: a backtracking regex."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "*":
            if pattern.startswith("**/", i):
                out.append("(?:.*/)?")
                i += 3
            elif pattern.startswith("**", i):
                out.append(".*")
                i += 2
            else:
                out.append("[^/]*")
                i += 1
            continue
        if char == "?":
            out.append("[^/]")
        elif char == "\\":
            if i + 1 == n:
                return None
            i += 1
            out.append(re.escape(pattern[i]))
        elif char == "[":
            return None  # classes are checked by the semantics tests
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out), re.DOTALL)


globs = st.text(alphabet="ab*?/\\.", max_size=10)
names = st.text(alphabet="ab/.", max_size=12)


@FUZZ
@given(pattern=globs, name=names)
@example(pattern="**/b", name="x/yb")
@example(pattern="**/**", name="a")
def test_the_glob_automaton_agrees_with_the_old_regex(pattern: str, name: str) -> None:
    expected = reference_regex(pattern)
    if expected is None:
        return
    assert Glob(pattern).fullmatch(name) is (expected.fullmatch(name) is not None)


@FUZZ
@given(lines=st.lists(st.text(max_size=30), max_size=5), path=st.text(max_size=60))
@example(lines=["*a*a*a*a*a*a*a*a*a*a*a*a*b"], path="a" * 60)
@example(lines=["[abc"], path="a")
def test_ignore_rules(lines: list[str], path: str) -> None:
    rules = parses_or_refuses(lambda: IgnoreRules.parse(lines))
    if isinstance(rules, IgnoreRules) and path.strip("/"):
        parses_or_refuses(lambda: rules.matches(path, False))
        parses_or_refuses(lambda: rules.may_reinclude_under(path.strip("/"), -1))
