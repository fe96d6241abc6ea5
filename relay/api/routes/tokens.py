"""Access tokens, managed the way LaunchDarkly manages them (admin only)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from relay.api.deps import AdminDep, StoreDep
from relay.api.schemas import AUTH_ERRORS, error_responses
from relay.errors import NotFoundError
from relay.store import tokens
from relay.store.tokens import Role, TokenInfo

router = APIRouter(prefix="/api/v2/tokens", tags=["tokens"], responses=AUTH_ERRORS)


class TokenPost(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    role: Role


class Token(BaseModel):
    """A token as listed; `token` (the secret) only in the answer to its creation."""

    id: str = Field(alias="_id")
    name: str
    role: Role
    creationDate: int
    token: str | None = None


class Tokens(BaseModel):
    items: list[Token]
    totalCount: int


def _rep(info: TokenInfo, secret: str | None = None) -> Token:
    return Token(
        _id=info.id, name=info.name, role=info.role, creationDate=info.created_at, token=secret
    )


@router.post("", status_code=201, response_model=Token, response_model_exclude_none=True)
def create_token(body: TokenPost, client: StoreDep, _: AdminDep) -> Token:
    """Create a token; its secret is shown in this answer only."""
    info, secret = tokens.create_token(client, name=body.name, role=body.role)
    return _rep(info, secret)


@router.get("", response_model=Tokens, response_model_exclude_none=True)
def list_tokens(client: StoreDep, _: AdminDep) -> Tokens:
    """List tokens, without their secrets."""
    items = [_rep(info) for info in tokens.list_tokens(client)]
    return Tokens(items=items, totalCount=len(items))


@router.delete("/{token_id}", status_code=204, responses=error_responses(404))
def delete_token(token_id: str, client: StoreDep, _: AdminDep) -> Response:
    """Revoke a token at once."""
    if not tokens.delete_token(client, token_id=token_id):
        raise NotFoundError(f"no token {token_id}")
    return Response(status_code=204)
