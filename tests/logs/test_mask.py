"""Masking: a secret never shows, raw, URL-quoted or in any base64 form or alignment."""

from __future__ import annotations

import base64
import json

import pytest

from shipway.logs.mask import HIDDEN, MIN_SECRET, Masker, forms

SECRET = "s3cr3t-Value/with+odd=chars"
ENCODERS = [base64.b64encode, base64.urlsafe_b64encode]


def test_a_raw_secret_is_replaced_wherever_it_appears() -> None:
    masker = Masker([SECRET])
    assert masker.mask(f"token={SECRET}") == f"token={HIDDEN}"
    assert masker.mask(f"{SECRET}{SECRET} and {SECRET}") == f"{HIDDEN} and {HIDDEN}"
    assert masker.mask("nothing to hide") == "nothing to hide"


@pytest.mark.parametrize("encode", ENCODERS)
@pytest.mark.parametrize("padded", [True, False])
def test_base64_forms_are_replaced(encode, padded: bool) -> None:  # type: ignore[no-untyped-def]
    encoded = encode(SECRET.encode()).decode()
    if not padded:
        encoded = encoded.rstrip("=")
    masked = Masker([SECRET]).mask(f"Authorization: Basic {encoded}")
    assert masked == f"Authorization: Basic {HIDDEN}"


@pytest.mark.parametrize("encode", ENCODERS)
@pytest.mark.parametrize("prefix", [b"", b"u", b"us", b"user:", b"a longer prefix, 1"])
@pytest.mark.parametrize("suffix", [b"", b"!", b"!!", b"@host:5432/db"])
def test_a_secret_inside_a_longer_base64_string_is_hidden_at_every_alignment(  # type: ignore[no-untyped-def]
    encode, prefix: bytes, suffix: bytes
) -> None:
    blob = encode(prefix + SECRET.encode() + suffix).decode()
    masked = Masker([SECRET]).mask(f"docker login {blob}")
    assert masked.count(HIDDEN) == 1
    left, right = masked.removeprefix("docker login ").split(HIDDEN)
    # only characters that also carry bits of the prefix or suffix are left
    assert len(left) <= -(-len(prefix) * 8 // 6)
    assert len(right) <= len(blob) - (len(prefix) + len(SECRET)) * 8 // 6
    assert not any(form in masked for form in forms(SECRET))


def test_url_quoted_secrets_are_hidden() -> None:
    secret = "p@ss word/1"
    assert (
        Masker([secret]).mask("postgres://me:p%40ss%20word%2F1@db") == f"postgres://me:{HIDDEN}@db"
    )


def test_each_line_of_a_multi_line_secret_is_hidden() -> None:
    key = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\n-----END KEY-----"
    masker = Masker([key])
    assert masker.mask("  MIIEvQIBADANBgkqhkiG9w0B") == f"  {HIDDEN}"


@pytest.mark.parametrize("short", ["", " ", "abc", "  ab  "])
def test_empty_and_very_short_secrets_are_ignored(short: str) -> None:
    masker = Masker([short])
    assert not masker
    assert masker.mask("abc abc the cat sat") == "abc abc the cat sat"
    assert len("abcd") == MIN_SECRET and Masker(["abcd"]).mask("xabcdx") == f"x{HIDDEN}x"


def test_overlapping_secrets_merge_into_one_mask() -> None:
    masker = Masker(["abcdef", "defghi"])
    assert masker.mask("xxabcdefghiyy") == f"xx{HIDDEN}yy"
    assert masker.mask("abcdef-defghi") == f"{HIDDEN}-{HIDDEN}"


def test_the_longest_secret_wins_over_one_it_contains() -> None:
    masker = Masker(["hunter2", "hunter2-extended"])
    assert masker.mask("pw hunter2-extended!") == f"pw {HIDDEN}!"


def test_many_secrets_at_once() -> None:
    secrets = [f"secret-number-{i:03d}" for i in range(50)]
    masker = Masker(secrets)
    line = " ".join(secrets[::7]) + " " + base64.b64encode(secrets[3].encode()).decode()
    masked = masker.mask(line)
    assert not any(s in masked for s in secrets)
    assert masked.count(HIDDEN) == len(secrets[::7]) + 1


def test_masking_is_stable_on_already_masked_text() -> None:
    masker = Masker([SECRET])
    once = masker.mask(f"a {SECRET} b")
    assert masker.mask(once) == once


PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
    "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n"
    "-----END PRIVATE KEY-----\n"
)


@pytest.mark.parametrize("encode", ENCODERS)
@pytest.mark.parametrize("secret", [PEM, PEM.strip()])
def test_a_multi_line_secret_is_hidden_whole_and_in_base64(encode, secret: str) -> None:  # type: ignore[no-untyped-def]
    masker = Masker([PEM])
    assert masker.mask(f"key: {secret}") == f"key: {HIDDEN}"
    encoded = encode(secret.encode()).decode()
    for shown in (encoded, encoded.rstrip("=")):
        assert masker.mask(f"blob {shown}!") == f"blob {HIDDEN}!"


def test_each_line_of_wrapped_base64_is_hidden() -> None:
    """base64.encodebytes wraps at 76 characters, PEM at 64: no line shows the value."""
    masker = Masker([PEM])
    mime = base64.encodebytes(PEM.encode()).decode()
    raw = base64.b64encode(PEM.encode()).decode()
    pem = "\n".join(raw[at : at + 64] for at in range(0, len(raw), 64))
    for wrapped in (mime, pem):
        lines = masker.mask(wrapped).splitlines()
        assert lines and set(lines) == {HIDDEN}


def test_a_secret_inside_a_json_string_is_hidden() -> None:
    secret = 'pa"ss\\word-é'
    masker = Masker([secret])
    for shown in (json.dumps({"k": secret}), json.dumps({"k": secret}, ensure_ascii=False)):
        assert masker.mask(shown) == f'{{"k": "{HIDDEN}"}}'
    assert masker.mask(json.dumps(PEM)) == json.dumps(PEM)
    assert Masker([PEM]).mask(json.dumps(PEM)) == f'"{HIDDEN}"'


def test_json_values_are_masked_in_strings_keys_and_numbers() -> None:
    masker = Masker([SECRET, "123456"])
    value = {
        "token": SECRET,
        SECRET: [f"a {SECRET} b", 123456, 1234567, 7, 1.5, True, None],
        "nested": {"deep": [{"x": base64.b64encode(SECRET.encode()).decode()}]},
    }
    assert masker.mask_json(value) == {
        "token": HIDDEN,
        HIDDEN: [f"a {HIDDEN} b", HIDDEN, f"{HIDDEN}7", 7, 1.5, True, None],
        "nested": {"deep": [{"x": HIDDEN}]},
    }


def test_json_values_without_secrets_are_left_as_they_are() -> None:
    value = {"a": [1, "two", None]}
    assert Masker([]).mask_json(value) is value
    assert Masker([SECRET]).mask_json(value) == value
