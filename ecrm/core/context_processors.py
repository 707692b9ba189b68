from django.conf import settings

from .permissions import CAPABILITIES, has_perm


class _Perms:
    """Lets templates ask `perms_ecrm.customers_merge` to hide what the user cannot do."""

    def __init__(self, user):
        self.user = user

    def __getattr__(self, name: str) -> bool:
        capability = name.replace("_", ".", 1)
        return capability in CAPABILITIES and has_perm(self.user, capability)


def console(request):
    return {"perms_ecrm": _Perms(getattr(request, "user", None)), "LANGUAGES": settings.LANGUAGES}
