import hashlib

from app.security import Credentials, TokenSet, bearer_token, device_key


def test_plain_labelled_and_hashed_tokens():
    hashed = "sha256:" + hashlib.sha256(b"secret-3").hexdigest()
    tokens = TokenSet(["secret-1", "alice=secret-2", f"bob={hashed}"], "operator")
    assert tokens.identify("secret-1") == "operator#1"
    assert tokens.identify("secret-2") == "alice"
    assert tokens.identify("secret-3") == "bob"
    assert tokens.identify("secret-4") is None and tokens.identify("") is None


def test_operators_may_read_when_viewer_tokens_are_set():
    creds = Credentials([], ["op"], ["view"])
    assert creds.viewers.identify("op") and creds.viewers.identify("view")
    assert not Credentials([], ["op"], []).viewers


def test_bearer_or_api_key_header():
    assert bearer_token({"Authorization": "Bearer abc"}) == "abc"
    assert bearer_token({"X-API-Key": "k"}) is None      # operator/viewer tokens: Bearer only
    assert device_key({"X-API-Key": "k"}) == "k"
    assert device_key({"Authorization": "Bearer k"}) == "k"
    assert bearer_token({"Authorization": "Basic xyz"}) is None
