"""SASL decoding lives with the protocol code (it is pure); re-exported here for the servers."""

from mailgw.protocols.sasl import (
    LOGIN_PASSWORD_CHALLENGE,
    LOGIN_USERNAME_CHALLENGE,
    decode_base64,
    decode_login_step,
    decode_plain,
    encode_plain,
)

__all__ = [
    "LOGIN_PASSWORD_CHALLENGE",
    "LOGIN_USERNAME_CHALLENGE",
    "decode_base64",
    "decode_login_step",
    "decode_plain",
    "encode_plain",
]
