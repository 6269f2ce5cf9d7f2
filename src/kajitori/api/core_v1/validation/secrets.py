"""Secret validation, and the two wire conversions upstream does while decoding.

Mirrors upstream's ``ValidateSecret``/``ValidateSecretUpdate``
(pkg/apis/core/validation) plus two things upstream gets for free from Go types:

* ``data`` values are ``[]byte``, so the JSON decoder base64-decodes them and a
  bad value fails the whole request *before* validation, as a 400. We keep
  wire dicts, so ``decode_secret_data`` reproduces that decoder's message
  (Go's ``illegal base64 data at input byte N``) for the server's decoder to
  wrap as upstream does: ``Secret in version "v1" cannot be handled as a
  Secret: illegal base64 data at input byte 4``.
* ``stringData`` is write-only: upstream's v1→internal conversion copies it
  into ``data`` (overwriting equal keys) and the internal type has no such
  field, so it is never stored or returned. ``merge_string_data`` does the
  same and is called from ``SecretStrategy.set_defaults``, which the generic
  store runs right after decoding on create, update and patch, i.e. before
  admission and validation, exactly where upstream converts.

Immutability compares decoded bytes (as upstream's ``reflect.DeepEqual`` on
``[]byte`` maps), so re-encoding the same bytes differently is not a change.

Upstream's apiserver validates no ``bootstrap.kubernetes.io/token`` contents
(only its authenticator ignores malformed ones), so neither do we.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from kajitori.api import typecheck
from kajitori.machinery import field, names, objectmeta

Object = dict[str, Any]

MAX_SECRET_SIZE = 1 << 20  # 1 MiB, upstream's core.MaxSecretSize (also for ConfigMaps)
IMMUTABLE_WHEN_SET = "field is immutable when `immutable` is set"
FIELD_IMMUTABLE = "field is immutable"
REDACTED = "<secret contents redacted>"

TYPE_OPAQUE = "Opaque"
TYPE_SERVICE_ACCOUNT_TOKEN = "kubernetes.io/service-account-token"
TYPE_DOCKERCFG = "kubernetes.io/dockercfg"
TYPE_DOCKER_CONFIG_JSON = "kubernetes.io/dockerconfigjson"
TYPE_BASIC_AUTH = "kubernetes.io/basic-auth"
TYPE_SSH_AUTH = "kubernetes.io/ssh-auth"
TYPE_TLS = "kubernetes.io/tls"
TYPE_BOOTSTRAP_TOKEN = "bootstrap.kubernetes.io/token"

SERVICE_ACCOUNT_NAME_KEY = "kubernetes.io/service-account.name"
SERVICE_ACCOUNT_UID_KEY = "kubernetes.io/service-account.uid"
DOCKER_CONFIG_KEY = ".dockercfg"
DOCKER_CONFIG_JSON_KEY = ".dockerconfigjson"
BASIC_AUTH_USERNAME_KEY = "username"
BASIC_AUTH_PASSWORD_KEY = "password"
SSH_AUTH_PRIVATE_KEY = "ssh-privatekey"
TLS_CERT_KEY = "tls.crt"
TLS_PRIVATE_KEY_KEY = "tls.key"

_DATA = field.Path("data")
# Upstream builds these two paths from the literal "data[%s]" (a long-standing
# quirk), so users see "data[%s][username]: Required value"; kept verbatim.
_QUIRKY_DATA = field.Path("data[%s]")


# --- Go's base64.StdEncoding, for []byte fields ---------------------------------------

_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_DECODE_MAP = {byte: index for index, byte in enumerate(_ALPHABET)}
_NEWLINES = (0x0A, 0x0D)
_PAD = 0x3D


def go_base64_decode(text: str) -> tuple[bytes, int | None]:
    """Decode as Go's ``base64.StdEncoding.Decode``: (bytes, offset of the first bad byte).

    Padding is required, CR/LF are skipped anywhere, and the reported offset
    is Go's (e.g. "abcde" fails at 4, unpadded "abc" at 0).
    """
    src = text.encode("utf-8", "replace")
    if len(src) % 4 == 0 and b"\n" not in src and b"\r" not in src:
        # Fast path: what strict standard base64 accepts, Go decodes to the same
        # bytes; only failures need the slow walk below for Go's error offset.
        try:
            return binascii.a2b_base64(src, strict_mode=True), None
        except binascii.Error:
            pass
    out = bytearray()
    si = 0
    while si < len(src):
        si, chunk, bad = _decode_quantum(src, si)
        out += chunk
        if bad is not None:
            return bytes(out), bad
    return bytes(out), None


def _decode_quantum(src: bytes, si: int) -> tuple[int, bytes, int | None]:
    """One 4-character group (Go's ``decodeQuantum``): (next index, bytes, bad offset)."""
    values = [0, 0, 0, 0]
    count = 0
    while count < 4:
        if si == len(src):
            if count == 0:
                return si, b"", None
            return si, b"", si - count
        char = src[si]
        si += 1
        if char in _DECODE_MAP:
            values[count] = _DECODE_MAP[char]
            count += 1
            continue
        if char in _NEWLINES:
            continue
        if char != _PAD or count < 2:
            return si, b"", si - 1
        return _finish_padded(src, si, values, count)
    return si, _assemble(values, 4), None


def _finish_padded(
    src: bytes, si: int, values: list[int], count: int
) -> tuple[int, bytes, int | None]:
    """After the first '=': a second one for "xx==", then nothing but newlines."""
    if count == 2:
        si = _skip_newlines(src, si)
        if si == len(src):
            return si, b"", len(src)
        if src[si] != _PAD:
            return si, b"", si - 1
        si += 1
    si = _skip_newlines(src, si)
    trailing = si if si < len(src) else None
    return si, _assemble(values, count), trailing


def _skip_newlines(src: bytes, si: int) -> int:
    while si < len(src) and src[si] in _NEWLINES:
        si += 1
    return si


def _assemble(values: list[int], count: int) -> bytes:
    word = values[0] << 18 | values[1] << 12 | values[2] << 6 | values[3]
    return word.to_bytes(3, "big")[: count - 1]


def base64_error(value: Any) -> str | None:
    """The Go decoder's error for one ``[]byte`` JSON value, None if it decodes."""
    if value is None:
        return None
    if not isinstance(value, str):
        return None  # type errors are reported by the caller, which knows the field
    _, bad = go_base64_decode(value)
    return None if bad is None else f"illegal base64 data at input byte {bad}"


def decode_bytes_map(obj: Object, *, kind: str, key: str) -> str | None:
    """Decoding errors of a ``map[string][]byte`` field, in document order, first one only."""
    values = obj.get(key)
    if values is None:
        return None
    if not isinstance(values, dict):
        return (
            f"json: cannot unmarshal {typecheck.json_kind(values)} into Go struct field "
            f"{kind}.{key} of type map[string][]uint8"
        )
    for value in values.values():
        if value is not None and not isinstance(value, str):
            return (
                f"json: cannot unmarshal {typecheck.json_kind(value)} into Go struct field "
                f"{kind}.{key} of type []uint8"
            )
        message = base64_error(value)
        if message:
            return message
    return None


def decode_secret_data(obj: Object) -> str | None:
    """The error upstream's JSON decoder gives for this Secret's byte fields, or None.

    The server wraps it as ``Secret in version "v1" cannot be handled as a
    Secret: <message>`` in a 400 BadRequest (upstream's transformDecodeError).
    """
    message = decode_bytes_map(obj, kind="Secret", key="data")
    if message:
        return message
    string_data = obj.get("stringData")
    if string_data is None:
        return None
    if not isinstance(string_data, dict):
        return (
            f"json: cannot unmarshal {typecheck.json_kind(string_data)} into Go struct field "
            "Secret.stringData of type map[string]string"
        )
    for value in string_data.values():
        if value is not None and not isinstance(value, str):
            return (
                f"json: cannot unmarshal {typecheck.json_kind(value)} into Go struct field "
                "Secret.stringData of type string"
            )
    return None


def _encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def merge_string_data(obj: Object) -> None:
    """Fold write-only ``stringData`` into ``data`` (base64) and drop it, in place.

    Upstream's v1→internal conversion: each stringData entry overwrites the
    data entry of the same key. Idempotent.
    """
    string_data = obj.pop("stringData", None)
    if not isinstance(string_data, dict) or not string_data:
        return
    data = obj.get("data")
    if not isinstance(data, dict):
        data = obj["data"] = {}
    for key, value in string_data.items():
        text = value if isinstance(value, str) else ""
        data[key] = _encode(text.encode("utf-8", "replace"))


def canonicalize_bytes_map(values: Any) -> None:
    """Re-encode decodable values as Go would output them (padded, no newlines)."""
    if not isinstance(values, dict):
        return
    for key, value in values.items():
        if value is None:
            values[key] = ""
        elif isinstance(value, str):
            raw, bad = go_base64_decode(value)
            if bad is None:
                values[key] = _encode(raw)


def decoded(values: Any) -> dict[str, bytes]:
    """A byte map's decoded values (undecodable ones as their raw text)."""
    if not isinstance(values, dict):
        return {}
    result: dict[str, bytes] = {}
    for key, value in values.items():
        text = value if isinstance(value, str) else ""
        raw, bad = go_base64_decode(text)
        result[key] = raw if bad is None else text.encode("utf-8", "replace")
    return result


# --- Go's encoding/json syntax check, for the docker config types ---------------------


class _SyntaxError(Exception):
    pass


_EOF = "unexpected end of JSON input"
_WHITESPACE = b" \t\r\n"
_DIGITS = b"0123456789"
_HEX = b"0123456789abcdefABCDEF"
_GO_ESCAPES = {0x07: "\\a", 0x08: "\\b", 0x0C: "\\f", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}
_GO_ESCAPES[0x0B] = "\\v"


def _quote_char(byte: int) -> str:
    """Go's ``quoteChar``: how the JSON scanner shows an offending byte."""
    if byte == 0x27:
        return "'\\''"
    if byte == 0x22:
        return "'\"'"
    if byte == 0x5C:
        return "'\\\\'"
    if byte in _GO_ESCAPES:
        return f"'{_GO_ESCAPES[byte]}'"
    if byte < 0x20 or byte == 0x7F:
        return f"'\\x{byte:02x}'"
    if 0x80 <= byte < 0xA0 or byte == 0xAD:
        return f"'\\u{byte:04x}'"
    return f"'{chr(byte)}'"


class _Scanner:
    """Go's JSON scanner states, only to name the first syntax error as Go does."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def fail(self, i: int, context: str) -> _SyntaxError:
        return _SyntaxError(f"invalid character {_quote_char(self.data[i])} {context}")

    def at(self, i: int) -> int:
        if i >= len(self.data):
            raise _SyntaxError(_EOF)
        return self.data[i]

    def space(self, i: int) -> int:
        while i < len(self.data) and self.data[i] in _WHITESPACE:
            i += 1
        return i

    def value(self, i: int) -> int:
        i = self.space(i)
        char = self.at(i)
        if char == 0x7B:
            return self.object(i + 1)
        if char == 0x5B:
            return self.array(i + 1)
        if char == 0x22:
            return self.string(i + 1)
        if char == 0x2D or char in _DIGITS:
            return self.number(i)
        for word in ("true", "false", "null"):
            if char == ord(word[0]):
                return self.literal(i, word)
        raise self.fail(i, "looking for beginning of value")

    def object(self, i: int) -> int:
        i = self.space(i)
        if self.at(i) == 0x7D:
            return i + 1
        while True:
            if self.at(i) != 0x22:
                raise self.fail(i, "looking for beginning of object key string")
            i = self.space(self.string(i + 1))
            if self.at(i) != 0x3A:
                raise self.fail(i, "after object key")
            i = self.space(self.value(i + 1))
            char = self.at(i)
            if char == 0x7D:
                return i + 1
            if char != 0x2C:
                raise self.fail(i, "after object key:value pair")
            i = self.space(i + 1)

    def array(self, i: int) -> int:
        i = self.space(i)
        if self.at(i) == 0x5D:
            return i + 1
        while True:
            i = self.space(self.value(i))
            char = self.at(i)
            if char == 0x5D:
                return i + 1
            if char != 0x2C:
                raise self.fail(i, "after array element")
            i += 1

    def string(self, i: int) -> int:
        while True:
            char = self.at(i)
            if char == 0x22:
                return i + 1
            if char == 0x5C:
                i = self.escape(i + 1)
                continue
            if char < 0x20:
                raise self.fail(i, "in string literal")
            i += 1

    def escape(self, i: int) -> int:
        char = self.at(i)
        if char in b'bfnrt\\/"':
            return i + 1
        if char != 0x75:
            raise self.fail(i, "in string escape code")
        for offset in range(1, 5):
            if self.at(i + offset) not in _HEX:
                raise self.fail(i + offset, "in \\u hexadecimal character escape")
        return i + 5

    def digits(self, i: int) -> int:
        while i < len(self.data) and self.data[i] in _DIGITS:
            i += 1
        return i

    def number(self, i: int) -> int:
        if self.data[i] == 0x2D:
            i += 1
            if self.at(i) not in _DIGITS:
                raise self.fail(i, "in numeric literal")
        i = i + 1 if self.data[i] == 0x30 else self.digits(i)
        if i < len(self.data) and self.data[i] == 0x2E:
            if self.at(i + 1) not in _DIGITS:
                raise self.fail(i + 1, "after decimal point in numeric literal")
            i = self.digits(i + 1)
        if i < len(self.data) and self.data[i] in b"eE":
            i += 1
            if self.at(i) in b"+-":
                i += 1
            if self.at(i) not in _DIGITS:
                raise self.fail(i, "in exponent of numeric literal")
            i = self.digits(i)
        return i

    def literal(self, i: int, word: str) -> int:
        for expected in word[1:]:
            i += 1
            if self.at(i) != ord(expected):
                raise self.fail(i, f"in literal {word} (expecting {_quote_char(ord(expected))})")
        return i + 1


def go_json_object_error(data: bytes) -> str | None:
    """Go's ``json.Unmarshal(data, &map[string]interface{}{})`` error, or None."""
    scanner = _Scanner(data)
    try:
        end = scanner.space(scanner.value(0))
        if end < len(data):
            raise scanner.fail(end, "after top-level value")
    except _SyntaxError as exc:
        return str(exc)
    except RecursionError:
        return "exceeded max depth"
    first = data[scanner.space(0)]
    kinds = {0x5B: "array", 0x22: "string", 0x74: "bool", 0x66: "bool"}
    if first in (0x7B, 0x6E):  # an object, or null (a no-op for a map)
        return None
    kind = kinds.get(first, "number")
    return f"json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"


# --- validation -----------------------------------------------------------------------


def validate_secret(obj: Object) -> field.ErrorList:
    """All problems with a Secret (ObjectMeta, data keys and size, per-type rules)."""
    errs = objectmeta.validate_object_meta(
        obj.get("metadata") or {},
        namespaced=True,
        name_validator=names.name_is_dns_subdomain,
        path=field.Path("metadata"),
    )
    raw_data = obj.get("data")
    data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
    errs.extend(_validate_data_keys(data))
    values = decoded(data)
    if sum(len(value) for value in values.values()) > MAX_SECRET_SIZE:
        errs.append(field.too_long(_DATA, "", MAX_SECRET_SIZE))
    errs.extend(_validate_type(obj, values))
    return errs


def _validate_data_keys(data: Object) -> field.ErrorList:
    errs = field.ErrorList()
    for key, value in data.items():
        for detail in names.is_config_map_key(key):
            errs.append(field.invalid(_DATA.key(key), key, detail))
        # Only reachable when the server's decoder did not call decode_secret_data.
        message = base64_error(value)
        if message:
            errs.append(field.invalid(_DATA.key(key), REDACTED, message))
    return errs


def _validate_type(obj: Object, data: dict[str, bytes]) -> field.ErrorList:
    secret_type = obj.get("type") or ""
    if secret_type == TYPE_SERVICE_ACCOUNT_TOKEN:
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if not annotations.get(SERVICE_ACCOUNT_NAME_KEY):
            path = field.Path("metadata", "annotations").key(SERVICE_ACCOUNT_NAME_KEY)
            return field.ErrorList([field.required(path)])
    elif secret_type in (TYPE_DOCKERCFG, TYPE_DOCKER_CONFIG_JSON):
        key = DOCKER_CONFIG_KEY if secret_type == TYPE_DOCKERCFG else DOCKER_CONFIG_JSON_KEY
        return _validate_json_key(data, key)
    elif secret_type == TYPE_BASIC_AUTH:
        if BASIC_AUTH_USERNAME_KEY not in data and BASIC_AUTH_PASSWORD_KEY not in data:
            return field.ErrorList(
                [
                    field.required(_QUIRKY_DATA.key(BASIC_AUTH_USERNAME_KEY)),
                    field.required(_QUIRKY_DATA.key(BASIC_AUTH_PASSWORD_KEY)),
                ]
            )
    elif secret_type == TYPE_SSH_AUTH:
        if not data.get(SSH_AUTH_PRIVATE_KEY):
            return field.ErrorList([field.required(_QUIRKY_DATA.key(SSH_AUTH_PRIVATE_KEY))])
    elif secret_type == TYPE_TLS:
        return field.ErrorList(
            field.required(_DATA.key(key))
            for key in (TLS_CERT_KEY, TLS_PRIVATE_KEY_KEY)
            if key not in data
        )
    return field.ErrorList()


def _validate_json_key(data: dict[str, bytes], key: str) -> field.ErrorList:
    if key not in data:
        return field.ErrorList([field.required(_DATA.key(key))])
    message = go_json_object_error(data[key])
    if message:
        return field.ErrorList([field.invalid(_DATA.key(key), REDACTED, message)])
    return field.ErrorList()


def validate_secret_update(new: Object, old: Object) -> field.ErrorList:
    """``validate_secret`` plus: type never changes; immutable Secrets stay as they are."""
    errs = objectmeta.validate_object_meta_update(
        new.get("metadata") or {}, old.get("metadata") or {}, path=field.Path("metadata")
    )
    new_type, old_type = new.get("type") or "", old.get("type") or ""
    if new_type != old_type:
        errs.append(field.invalid(field.Path("type"), new_type, FIELD_IMMUTABLE))
    if old.get("immutable") is True:
        if new.get("immutable") is not True:
            errs.append(field.forbidden(field.Path("immutable"), IMMUTABLE_WHEN_SET))
        # An absent map and an empty one are the same here (our storage may keep
        # either; upstream's protobuf storage never keeps an empty map).
        if decoded(new.get("data")) != decoded(old.get("data")):
            errs.append(field.forbidden(_DATA, IMMUTABLE_WHEN_SET))
    errs.extend(validate_secret(new))
    return errs
