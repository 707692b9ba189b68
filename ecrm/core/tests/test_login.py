import pytest
from django.urls import reverse

from ecrm.core.demo import DEMO_PASSWORD


def test_login_with_the_form_then_home(client, cast):
    resp = client.post(reverse("core:login"), {"username": "manager", "password": DEMO_PASSWORD})
    assert resp.status_code == 302
    assert resp.headers["Location"] == reverse("core:home")
    home = client.get(reverse("core:home"))
    assert home.status_code == 200
    assert "Mia" in home.content.decode()


def test_wrong_password_is_refused(client, cast):
    resp = client.post(reverse("core:login"), {"username": "manager", "password": "nope-nope"})
    assert resp.status_code == 200
    assert "_auth_user_id" not in client.session


def test_login_is_throttled_after_five_failures(client, cast):
    for _ in range(5):
        client.post(reverse("core:login"), {"username": "agent_li", "password": "wrong-password"})
    # Even the right password is refused while locked out, and the lockout page says why.
    resp = client.post(reverse("core:login"), {"username": "agent_li", "password": DEMO_PASSWORD})
    assert resp.status_code == 429
    assert "Too many failed sign-in attempts" in resp.content.decode()
    assert "_auth_user_id" not in client.session


def test_passwords_are_hashed_with_argon2_in_production_settings():
    from config.settings import base

    assert base.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"


def test_anonymous_is_sent_to_login(client, db):
    resp = client.get(reverse("core:home"))
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith(reverse("core:login"))


@pytest.mark.parametrize("username", ["manager", "agent_li", "nobody"])
def test_non_admins_cannot_open_admin_settings(login, username):
    client = login(username)
    for name in ("core:integrations", "core:failed_jobs"):
        assert client.get(reverse(name)).status_code == 403


def test_logout_requires_post(login):
    client = login("manager")
    assert client.get(reverse("core:logout")).status_code == 405
    assert client.post(reverse("core:logout")).status_code == 302
    assert client.get(reverse("core:home")).status_code == 302


def test_language_is_switchable_to_chinese(login):
    client = login("manager")
    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})
    resp = client.get(reverse("core:home"))
    assert 'lang="zh-hans"' in resp.content.decode()
    assert "客户" in resp.content.decode()  # the navigation is translated


def test_language_follows_the_browser(client, cast):
    resp = client.get(reverse("core:login"), HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")
    assert 'lang="zh-hans"' in resp.content.decode()
    assert "登录" in resp.content.decode()

