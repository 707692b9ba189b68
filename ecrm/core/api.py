"""API endpoints about the caller itself."""

from ninja import Router, Schema

from ecrm.core.models import ApiKey, User

router = Router(tags=["auth"])


class WhoAmIOut(Schema):
    kind: str
    name: str
    scope: str


@router.get("/whoami", response=WhoAmIOut, summary="Who the credentials belong to")
def whoami(request):
    principal = request.auth
    if isinstance(principal, ApiKey):
        return {"kind": "api_key", "name": principal.name, "scope": principal.scope}
    assert isinstance(principal, User)
    return {"kind": "user", "name": principal.get_username(), "scope": principal.role}
