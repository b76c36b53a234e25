"""Issue 11 item 1: an e-mail address links a Google account to a user only while that user has
none (docs/api.md#user-service).  Another Google account given the address of a linked user
(a recycled or re-assigned address) is refused with 403 and the refusal is logged; it never
takes the user over."""
import urllib.parse

import requests

from harness import assert_error, bearer, login, operator_token

OTHER_SUB = "199999999999999999999"


def provider(stack):
    return f"http://127.0.0.1:{stack.oidc.port}"


def give_address_to_another_account(stack, email, sub=OTHER_SUB):
    """From now on the provider signs email in with sub: another Google account."""
    r = requests.put(f"{provider(stack)}/test/subjects/{urllib.parse.quote(email)}",
                     json={"sub": sub}, timeout=10)
    assert r.status_code == 204, r.text


def restore_account(stack, email):
    r = requests.delete(f"{provider(stack)}/test/subjects/{urllib.parse.quote(email)}",
                        timeout=10)
    assert r.status_code == 204, r.text


def test_address_of_a_linked_user_does_not_sign_in_another_account(stack, user_url,
                                                                    admin_headers):
    email = "linked.victim@example.com"
    first = login(user_url, email)
    assert first.status_code == 200, first.text
    uid = first.json()["user"]["id"]
    before = requests.get(f"{user_url}/admin/users/{uid}", headers=admin_headers).json()
    give_address_to_another_account(stack, email)
    try:
        r = login(user_url, email)
        body = assert_error(r, 403, "forbidden", mentions="another Google account")
        assert "access_token" not in r.text and "refresh_token" not in r.text
        assert "details" not in body
        # Logged with the user it concerns, and nothing changed on the user.
        assert (f"the e-mail address of user {uid} belongs to another Google account"
                in stack.user.log_text())
        after = requests.get(f"{user_url}/admin/users/{uid}", headers=admin_headers).json()
        assert after == before
        # No second user was created for that address either.
        r = requests.get(f"{user_url}/admin/users", params={"q": "linked.victim"},
                         headers=admin_headers)
        assert [u["id"] for u in r.json()] == [uid]
    finally:
        restore_account(stack, email)
    # The account the user is linked to still signs in as that user.
    again = login(user_url, email)
    assert again.status_code == 200, again.text
    assert again.json()["user"]["id"] == uid


def test_user_without_a_google_account_is_linked_once(stack, user_url, admin_headers):
    # Created by the operator command (no sub yet): the first Google account with the address
    # is linked; from then on another account with the same address is refused.
    email = "linked.once@example.com"
    _, uid = operator_token(stack.user, email, name="Linked Once")
    give_address_to_another_account(stack, email, sub="177777777777777777777")
    try:
        r = login(user_url, email)
        assert r.status_code == 200, r.text
        assert r.json()["user"]["id"] == uid
        token = r.json()["access_token"]
    finally:
        restore_account(stack, email)
    # The address's usual account (another sub) is now the stranger.
    assert_error(login(user_url, email), 403, "forbidden")
    # The linked one keeps working.
    give_address_to_another_account(stack, email, sub="177777777777777777777")
    try:
        assert login(user_url, email).json()["user"]["id"] == uid
    finally:
        restore_account(stack, email)
    assert requests.get(f"{user_url}/users/me", headers=bearer(token)).status_code == 200


def test_address_given_to_a_user_by_an_admin_is_not_a_way_in(stack, user_url, admin_headers):
    # An admin changes a linked user's address; a Google account that has that address (and
    # is not the user's) cannot take the user over through it.
    victim = login(user_url, "linked.renamed@example.com").json()["user"]
    r = requests.put(f"{user_url}/admin/users/{victim['id']}",
                     json={"email": "linked.newaddress@example.com"}, headers=admin_headers)
    assert r.status_code == 200, r.text
    assert_error(login(user_url, "linked.newaddress@example.com"), 403, "forbidden")
