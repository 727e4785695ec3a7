import pytest

from pcci import api_tokens


def test_scopes_include_the_ones_below():
    read, operate, admin = (api_tokens.make_token("s" * 20 + n, n, n) for n in api_tokens.SCOPES)
    assert read.allows("read") and not read.allows("operate") and not read.allows("admin")
    assert operate.allows("read") and operate.allows("operate") and not operate.allows("admin")
    assert admin.allows("admin")


def test_a_bare_token_is_an_admin_token_as_it_was_before_scopes():
    token = api_tokens.from_config_entry("x" * 20, 0)
    assert (token.name, token.scope) == ("api_tokens-1", "admin")
    named = api_tokens.from_config_entry({"name": "ci", "scope": "operate", "token": "y" * 20}, 1)
    assert (named.name, named.scope) == ("ci", "operate")
    assert api_tokens.from_config_entry({"name": "viewer", "token": "z" * 20}, 2).scope == "read"


def test_tokens_file_lines():
    tokens = api_tokens.from_lines(["# comment\n", "a" * 20 + "\n", "b" * 20 + " grafana read  # metrics\n",
                                    "\n", "c" * 20 + " alice operate\n"])
    assert [(t.name, t.scope) for t in tokens] == [("line-2", "admin"), ("grafana", "read"), ("alice", "operate")]


@pytest.mark.parametrize("lines,message", [
    (["short"], "line 1: a token must be a string of at least 16"),
    (["a" * 20 + " alice root"], "line 1: token alice: scope 'root' must be one of read, operate, admin"),
    (["a" * 20 + " al/ice"], "line 1: token name 'al/ice'"),
    (["a" * 20 + " x read extra"], "line 1: expected 'TOKEN [NAME [SCOPE]]'"),
])
def test_a_bad_line_is_named_without_quoting_the_secret(lines, message):
    with pytest.raises(ValueError) as caught:
        api_tokens.from_lines(lines)
    assert str(caught.value).startswith(message)
    assert "a" * 20 not in str(caught.value)


def test_names_and_secrets_are_unique():
    with pytest.raises(ValueError, match="repeated: ci"):
        api_tokens.check_unique([api_tokens.make_token("a" * 20, "ci", "read"),
                                 api_tokens.make_token("b" * 20, "ci", "read")])
    with pytest.raises(ValueError, match="the same token is given twice"):
        api_tokens.check_unique([api_tokens.make_token("a" * 20, "x", "read"),
                                 api_tokens.make_token("a" * 20, "y", "admin")])


def test_match_finds_the_token_and_never_a_prefix():
    tokens = [api_tokens.make_token("t" * 20, "t", "read"), api_tokens.make_token("u" * 20, "u", "admin")]
    assert api_tokens.match(tokens, "u" * 20).name == "u"
    assert api_tokens.match(tokens, "t" * 19) is None
    assert api_tokens.match([], "anything") is None
    assert "t" * 20 not in repr(tokens)
