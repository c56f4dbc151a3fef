"""Managing OBS overlays (``/overlays/...``, logged in): tokens, their options, skip, sounds.

STREAMER accounts manage the tokens and sounds of the streamers in their scope; a MODERATOR may
list the tokens and skip the current alert; a VIEWER none of it. A token is never an account's
login and an account's login never opens an overlay (``ttlp.api.routes.overlay``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Final

import msgspec
from litestar import delete, get, post, put
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.params import Body, JSONBody, KwargDefinition, PathParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from ttlp.api.accounts import ALL_STREAMS, Account, Role
from ttlp.api.auth import current_account, ensure_scope, normalize_scope, require
from ttlp.api.overlays.audio import AUDIO_TYPES, MAX_SOUND_BYTES, audio_type
from ttlp.api.overlays.options import MAX_ID, Options, apply_patch, invalid
from ttlp.api.overlays.store import OverlayStore, OverlayToken, Sound
from ttlp.api.routes.history import NOT_BLANK, STREAMER_PATTERN
from ttlp.api.state import Api, Req, iso

NAME_MAX: Final = 128
MULTIPART_OVERHEAD: Final = 64 * 1024
"""Room for the form's other fields and boundaries around a sound of ``MAX_SOUND_BYTES``."""

TokenId = Annotated[int, PathParameter(ge=1, le=MAX_ID, description="an overlay token id")]
SoundId = Annotated[int, PathParameter(ge=1, le=MAX_ID, description="an overlay sound id")]
Name = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=NAME_MAX, pattern=NOT_BLANK),
    KwargDefinition(min_length=1, max_length=NAME_MAX, pattern=NOT_BLANK),
]
Streamer = Annotated[
    str,
    msgspec.Meta(pattern=STREAMER_PATTERN, description="the streamer's handle (with or without @)"),
    KwargDefinition(pattern=STREAMER_PATTERN),
]


class UnsupportedMediaType(HTTPException):
    """415: an upload that is not one of the accepted audio formats (for ``raises=``)."""

    status_code = 415


class TokenIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    name: Name
    """What the token is for (e.g. "OBS main scene")."""
    streamer: Streamer


class TokenOut(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    name: str
    streamer: str
    token: str
    """The secret of the overlay URLs: ``/overlay/{kind}?token=…``."""
    created_at: str | None
    revoked_at: str | None
    last_used_at: str | None
    options_version: int


class SoundOut(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    name: str
    streamer: str
    content_type: str
    size: int
    created_at: str | None


@dataclass
class SoundUpload:
    """``multipart/form-data``: the audio file, its name, the streamer it is for."""

    file: UploadFile
    name: Name
    streamer: Streamer


def token_out(token: OverlayToken) -> TokenOut:
    return TokenOut(
        id=token.id,
        name=token.name,
        streamer=token.streamer,
        token=token.token,
        created_at=iso(token.created_at),
        revoked_at=iso(token.revoked_at),
        last_used_at=iso(token.last_used_at),
        options_version=token.options_version,
    )


def sound_out(sound: Sound) -> SoundOut:
    return SoundOut(
        id=sound.id,
        name=sound.name,
        streamer=sound.streamer,
        content_type=sound.content_type,
        size=sound.size,
        created_at=iso(sound.created_at),
    )


def _store(api: Api) -> OverlayStore:
    return api.overlays.store


def _streamers(account: Account) -> list[str] | None:
    return None if ALL_STREAMS in account.scopes else list(account.scopes)


async def token_in_scope(api: Api, request: Req, token_id: int) -> OverlayToken:
    token = await _store(api).token(token_id)
    if token is None:
        raise NotFoundException(f"no overlay token {token_id}")
    ensure_scope(current_account(request), token.streamer)
    return token


async def check_sounds(api: Api, streamer: str, options: Options) -> None:
    """Every sound the options name is one of ``streamer``'s (else 400 naming the field)."""
    refs = list(options.alerts.sounds.refs())
    if not refs:
        return
    found = await _store(api).sound_ids(streamer, [sound for _, sound in refs])
    for kind, sound in refs:
        if sound not in found:
            raise invalid(f"alerts.sounds.{kind}", f"no sound {sound} of @{streamer}")


# -- tokens --------------------------------------------------------------------------------------
@get(
    "/overlays/tokens",
    guards=[require(Role.MODERATOR)],
    summary="Overlay tokens of the account's streamers, newest first (revoked ones too)",
)
async def list_tokens(api: Api, request: Req) -> list[TokenOut]:
    tokens = await _store(api).tokens(_streamers(current_account(request)))
    return [token_out(t) for t in tokens]


@post(
    "/overlays/tokens",
    guards=[require(Role.STREAMER)],
    status_code=HTTP_201_CREATED,
    summary="Create an overlay token for a streamer of the account's scope",
)
async def create_token(api: Api, request: Req, data: JSONBody[TokenIn]) -> TokenOut:
    account = current_account(request)
    streamer = normalize_scope(data.streamer)
    ensure_scope(account, streamer)
    token = await _store(api).create_token(streamer, data.name.strip(), account.username)
    return token_out(token)


@delete(
    "/overlays/tokens/{token_id:int}",
    guards=[require(Role.STREAMER)],
    status_code=HTTP_204_NO_CONTENT,
    summary="Revoke an overlay token: its open overlays stop within seconds",
)
async def revoke_token(api: Api, request: Req, token_id: TokenId) -> None:
    await token_in_scope(api, request, token_id)
    token = await _store(api).revoke(token_id)
    if token is not None:
        api.overlays.changed(token)


@get(
    "/overlays/tokens/{token_id:int}/options",
    guards=[require(Role.STREAMER)],
    summary="An overlay token's options, every field (defaults filled in)",
)
async def get_options(api: Api, request: Req, token_id: TokenId) -> Options:
    token = await token_in_scope(api, request, token_id)
    return token.options


@put(
    "/overlays/tokens/{token_id:int}/options",
    guards=[require(Role.STREAMER)],
    summary="Change an overlay token's options: the fields sent are merged onto the current ones",
)
async def put_options(
    api: Api, request: Req, token_id: TokenId, data: JSONBody[Options]
) -> Options:
    # ``data`` has the defaults filled in: the fields actually sent are the body's own.
    token = await token_in_scope(api, request, token_id)
    patch = msgspec.json.decode(await request.body())
    await check_sounds(api, token.streamer, apply_patch(token.options, patch))
    saved = await _store(api).change_options(token_id, lambda now: apply_patch(now, patch))
    if saved is None:
        raise NotFoundException(f"no overlay token {token_id}")
    api.overlays.changed(saved)
    return saved.options


@post(
    "/overlays/tokens/{token_id:int}/skip",
    guards=[require(Role.MODERATOR)],
    status_code=HTTP_204_NO_CONTENT,
    summary="Skip the alert the token's open alerts overlays show (and stop speaking)",
)
async def skip_alert(api: Api, request: Req, token_id: TokenId) -> None:
    await token_in_scope(api, request, token_id)
    token = await _store(api).skip(token_id)
    if token is not None:
        api.overlays.changed(token)


# -- sounds --------------------------------------------------------------------------------------
@get(
    "/overlays/sounds",
    guards=[require(Role.STREAMER)],
    summary="Alert sounds of the account's streamers, newest first",
)
async def list_sounds(api: Api, request: Req) -> list[SoundOut]:
    sounds = await _store(api).sounds(_streamers(current_account(request)))
    return [sound_out(s) for s in sounds]


@post(
    "/overlays/sounds",
    guards=[require(Role.STREAMER)],
    status_code=HTTP_201_CREATED,
    raises=[UnsupportedMediaType],
    request_max_body_size=MAX_SOUND_BYTES + MULTIPART_OVERHEAD,
    summary="Upload an alert sound (MP3, Ogg, WAV or WebM audio, at most 1 MiB)",
)
async def upload_sound(
    api: Api,
    request: Req,
    data: Annotated[SoundUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
) -> SoundOut:
    account = current_account(request)
    streamer = normalize_scope(data.streamer)
    ensure_scope(account, streamer)
    audio = await data.file.read(MAX_SOUND_BYTES + 1)
    if len(audio) > MAX_SOUND_BYTES:
        raise RequestEntityTooLarge(f"a sound is at most {MAX_SOUND_BYTES} bytes (1 MiB)")
    if not audio:
        raise ValidationException("the sound file is empty")
    content_type = audio_type(audio)
    if content_type is None:
        raise UnsupportedMediaType(
            f"not an audio file ttlp serves: {', '.join(AUDIO_TYPES)} (by its content, "
            "whatever its name or declared type)"
        )
    sound = await _store(api).add_sound(
        streamer, data.name.strip(), content_type, audio, account.username
    )
    return sound_out(sound)


@delete(
    "/overlays/sounds/{sound_id:int}",
    guards=[require(Role.STREAMER)],
    status_code=HTTP_204_NO_CONTENT,
    summary="Delete an alert sound (the options naming it fall back to no sound)",
)
async def delete_sound(api: Api, request: Req, sound_id: SoundId) -> None:
    store = _store(api)
    sound = await store.sound(sound_id)
    if sound is None:
        raise NotFoundException(f"no overlay sound {sound_id}")
    ensure_scope(current_account(request), sound.streamer)
    await store.delete_sound(sound_id)
    for token in await store.tokens([sound.streamer]):
        if any(ref == sound_id for _, ref in token.options.alerts.sounds.refs()):
            saved = await store.change_options(token.id, _without_sound(sound_id))
            if saved is not None:
                api.overlays.changed(saved)


def _without_sound(sound_id: int) -> Callable[[Options], Options | None]:
    def change(options: Options) -> Options | None:
        kinds = [kind for kind, ref in options.alerts.sounds.refs() if ref == sound_id]
        if not kinds:
            return None
        return apply_patch(options, {"alerts": {"sounds": dict.fromkeys(kinds)}})

    return change


routes = [
    list_tokens,
    create_token,
    revoke_token,
    get_options,
    put_options,
    skip_alert,
    list_sounds,
    upload_sound,
    delete_sound,
]
