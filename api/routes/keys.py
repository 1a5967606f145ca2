"""/v1/keys: API keys (admin). `vidsight keys ...` does the same from the command line."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from ..deps import AdminKey, ServiceDep
from ..schemas import KeyCreate, KeyCreated, KeyList, KeyOut

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.post("", response_model=KeyCreated, status_code=201, summary="Create a key (the token is shown once)")
def create_key(body: KeyCreate, service: ServiceDep, _key: AdminKey) -> KeyCreated:
    token, key = service.keys.create(body.scopes, body.name)
    return KeyCreated(token=token, key=KeyOut(**key.as_dict()))


@router.get("", response_model=KeyList, summary="Keys (never their tokens)")
def list_keys(service: ServiceDep, _key: AdminKey) -> KeyList:
    return KeyList(keys=[KeyOut(**k.as_dict()) for k in service.keys.all()])


@router.delete("/{key_id}", response_model=KeyOut, summary="Revoke a key")
def revoke_key(
    key_id: Annotated[str, Path(min_length=12, max_length=12, pattern=r"^[0-9a-f]+$")],
    service: ServiceDep,
    _key: AdminKey,
) -> KeyOut:
    return KeyOut(**service.keys.revoke(key_id).as_dict())
