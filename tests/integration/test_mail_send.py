"""The mail module (common/src/mail.c) against a real SMTP server: messages built and sent through
libcurl by the driver build/<tree>/tests/mail_send_dump reach Mailpit, and what arrived is read
back through Mailpit's HTTP API and parsed independently (Python's email package, the icalendar
package).  The outcomes the reservation-service sender will act on: 5xx is permanent, 4xx,
connection refused and timeouts are temporary; smtp:// to a host that is not loopback demands
STARTTLS before anything else is said; a header injection never reaches the server."""
import email
import email.policy
import json
import os
import socket
import subprocess
import threading
import time

import icalendar
import pytest

from harness import BIN_DIR, free_port

DRIVER = os.path.join(os.path.dirname(BIN_DIR), "tests", "mail_send_dump")
FROM = "rooms@example.com"


def run_driver(spec):
    """Runs mail_send_dump with spec (JSON on stdin); returns its parsed JSON line (or the
    message text when spec has no "smtp")."""
    assert os.path.exists(DRIVER), f"{DRIVER} is missing (make unit-bins)"
    out = subprocess.run([DRIVER], input=json.dumps(spec), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "ERROR: AddressSanitizer" not in out.stderr and "runtime error" not in out.stderr, \
        out.stderr
    return json.loads(out.stdout) if "smtp" in spec or out.stdout.startswith("{") else out.stdout


def invitation(method="REQUEST", sequence=0, **message):
    """A spec: an invitation from the suite to Jörg (To), John (To) and Carol (Cc)."""
    msg = {
        "from": {"name": "Meeting Rooms", "addr": FROM},
        "to": [{"name": "Jörg Müller", "addr": "joerg@example.com"},
               {"name": "Doe, John", "addr": "john@example.com"}],
        "cc": [{"addr": "carol@example.com"}],
        "reply_to": {"name": "Alice Organizer", "addr": "alice@example.com"},
        "subject": "Einladung: Größenplanung im Raum „Blau“ — Dienstag, 1. Dezember 10:00",
        "message_id": f"reservation-42.{sequence}@rooms.example.com",
        "date": 1796051700,
        "text": "Hello,\n\nAlice invites you.\nPurpose: <b>plan</b> & \"sizes\"\n",
    }
    msg.update(message)
    return {
        "message": msg,
        "event": {
            "method": method, "uid": "reservation-42@rooms.example.com", "sequence": sequence,
            "summary": "Größenplanung; budget, Q1", "location": "Blau (3rd floor)",
            "url": "https://meet.jit.si/rooms-abcdef", "zone": "Europe/Berlin",
            "start": "2026-12-01T10:00:00", "end": "2026-12-01T11:30:00",
            "organizer": {"name": "Alice Organizer", "addr": "alice@example.com"},
            "attendees": [{"name": "Jörg Müller", "addr": "joerg@example.com"},
                          {"addr": "john@example.com"}, {"addr": "carol@example.com"}],
        },
    }


def send(mailpit, spec, rcpt, url=None, **smtp):
    spec = dict(spec)
    spec["smtp"] = {"url": url or mailpit.smtp_url, "from": FROM, "timeout_ms": 5000, **smtp}
    spec["rcpt"] = rcpt
    return run_driver(spec)


RCPT = ["joerg@example.com", "john@example.com", "carol@example.com"]


def calendar_of(mailpit, mid):
    """The invite.ics attachment as Mailpit gives it, parsed."""
    full = mailpit.message(mid)
    atts = [a for a in full["Attachments"] if a["FileName"] == "invite.ics"]
    assert len(atts) == 1, full["Attachments"]
    assert atts[0]["ContentType"] == "text/calendar"
    return icalendar.Calendar.from_ical(mailpit.part(mid, atts[0]["PartID"]))


def test_invitation_arrives_with_every_header_and_part(mailbox):
    res = send(mailbox, invitation(), RCPT + ["hidden@example.com"])
    assert res == {"status": "sent", "smtp_code": 250, "detail": "sent", "step": "data",
                   "relay": False}, res
    [summary] = mailbox.wait_messages(1)
    m = mailbox.message(summary["ID"])
    assert m["Subject"] == "Einladung: Größenplanung im Raum „Blau“ — Dienstag, 1. Dezember 10:00"
    assert m["From"] == {"Name": "Meeting Rooms", "Address": FROM}
    assert m["To"] == [{"Name": "Jörg Müller", "Address": "joerg@example.com"},
                       {"Name": "Doe, John", "Address": "john@example.com"}]
    assert m["Cc"] == [{"Name": "", "Address": "carol@example.com"}]
    # An envelope recipient not named in To/Cc: Mailpit shows it as Bcc.
    assert m["Bcc"] == [{"Name": "", "Address": "hidden@example.com"}]
    assert m["ReplyTo"] == [{"Name": "Alice Organizer", "Address": "alice@example.com"}]
    assert m["ReturnPath"] == FROM
    assert m["MessageID"] == "reservation-42.0@rooms.example.com"
    assert m["Date"] == "2026-11-30T15:15:00Z"
    assert m["Text"] == "Hello,\r\n\r\nAlice invites you.\r\nPurpose: <b>plan</b> & \"sizes\"\r\n"
    assert "Purpose: &lt;b&gt;plan&lt;/b&gt; &amp; &quot;sizes&quot;" in m["HTML"]
    assert "<b>plan</b>" not in m["HTML"]

    # The raw message, parsed by Python's email package: no defects, the iMIP structure.
    raw = mailbox.raw(summary["ID"])
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert not parsed.defects and all(not p.defects for p in parsed.walk())
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed.get_content_type() == "multipart/mixed"
    alt, att = parsed.get_payload()
    assert alt.get_content_type() == "multipart/alternative"
    types = [p.get_content_type() for p in alt.get_payload()]
    assert types == ["text/plain", "text/html", "text/calendar"]
    for p in (alt.get_payload()[2], att):
        assert p.get_content_type() == "text/calendar"
        assert p.get_param("method") == "REQUEST"
        assert p["Content-Transfer-Encoding"] == "base64"
    assert att.get_filename() == "invite.ics"
    assert att.get_content_disposition() == "attachment"
    assert alt.get_payload()[2].get_payload(decode=True) == att.get_payload(decode=True)
    # Lines: CRLF, none longer than 76 characters here (no long address or id in this one).
    lines = raw.split(b"\r\n")
    assert all(b"\n" not in line and b"\r" not in line for line in lines)
    assert max(len(line) for line in lines) <= 76

    # The invitation, parsed by icalendar.
    cal = calendar_of(mailbox, summary["ID"])
    assert str(cal["METHOD"]) == "REQUEST"
    [tz] = cal.walk("VTIMEZONE")
    assert str(tz["TZID"]) == "Europe/Berlin"
    [ev] = cal.walk("VEVENT")
    assert str(ev["UID"]) == "reservation-42@rooms.example.com"
    assert int(ev["SEQUENCE"]) == 0
    assert str(ev["SUMMARY"]) == "Größenplanung; budget, Q1"
    assert str(ev["LOCATION"]) == "Blau (3rd floor)"
    assert str(ev["URL"]) == "https://meet.jit.si/rooms-abcdef"
    assert str(ev["STATUS"]) == "CONFIRMED"
    assert ev["DTSTART"].dt.isoformat() == "2026-12-01T10:00:00+01:00"
    assert ev["DTEND"].dt.isoformat() == "2026-12-01T11:30:00+01:00"
    assert str(ev["ORGANIZER"]) == "mailto:alice@example.com"
    assert ev["ORGANIZER"].params["CN"] == "Alice Organizer"
    attendees = ev["ATTENDEE"]
    assert [str(a) for a in attendees] == ["mailto:joerg@example.com", "mailto:john@example.com",
                                           "mailto:carol@example.com"]
    assert attendees[0].params["CN"] == "Jörg Müller"
    assert all(a.params["RSVP"] == "TRUE" for a in attendees)


def test_update_and_cancel_keep_the_uid(mailbox):
    assert send(mailbox, invitation(sequence=1), RCPT)["status"] == "sent"
    assert send(mailbox, invitation("CANCEL", sequence=2, subject="Abgesagt: Größenplanung"),
                RCPT)["status"] == "sent"
    summaries = mailbox.wait_messages(2)
    by_subject = {s["Subject"]: s for s in summaries}
    cancel = by_subject["Abgesagt: Größenplanung"]
    update = next(s for s in summaries if s is not cancel)
    first = calendar_of(mailbox, update["ID"]).walk("VEVENT")[0]
    cal = calendar_of(mailbox, cancel["ID"])
    second = cal.walk("VEVENT")[0]
    assert str(cal["METHOD"]) == "CANCEL"
    assert str(second["STATUS"]) == "CANCELLED"
    assert str(second["UID"]) == str(first["UID"])
    assert int(second["SEQUENCE"]) > int(first["SEQUENCE"])
    raw = email.message_from_bytes(mailbox.raw(cancel["ID"]), policy=email.policy.default)
    assert [p.get_param("method") for p in raw.walk()
            if p.get_content_type() == "text/calendar"] == ["CANCEL", "CANCEL"]


@pytest.mark.parametrize("field, value", [
    ("subject", "Hello\r\nBcc: eve@example.com"),
    ("subject", "Hello\nBcc: eve@example.com"),
    ("from", {"name": "Rooms\r\nBcc: eve@example.com", "addr": FROM}),
    ("to", [{"name": "Bob", "addr": "bob@example.com>\r\nBcc: <eve@example.com"}]),
    ("to", [{"name": "Bob\rBcc: eve@example.com", "addr": "bob@example.com"}]),
    ("cc", [{"name": "x", "addr": "eve@example.com, mallory@example.com"}]),
    ("reply_to", {"name": "x", "addr": "<eve@example.com>"}),
    ("message_id", "id@example.com>\r\nBcc: eve@example.com"),
])
def test_header_injection_never_reaches_the_server(mailbox, field, value):
    spec = invitation(**{field: value})
    res = send(mailbox, spec, ["bob@example.com"])
    assert res == {"status": "refused", "why": field}, res
    assert mailbox.messages() == []  # the driver sends synchronously: nothing came


@pytest.mark.parametrize("rcpt, sender", [
    ("bob@example.com>\r\nRCPT TO:<eve@example.com", FROM),
    ("bob@example.com\r\nDATA", FROM),
    ("bob@example.com", "rooms@example.com>\r\nRCPT TO:<eve@example.com"),
])
def test_envelope_injection_refused_before_connecting(mailbox, rcpt, sender):
    spec = invitation()
    spec["smtp"] = {"url": mailbox.smtp_url, "from": sender, "timeout_ms": 5000}
    spec["rcpt"] = [rcpt]
    res = run_driver(spec)
    assert res["status"] == "invalid" and res["smtp_code"] == 0, res
    assert mailbox.messages() == []


def test_rejected_recipient_is_permanent(mailbox):
    res = send(mailbox, invitation(), ["nobody@rejected.invalid"])
    assert res["status"] == "permanent" and res["smtp_code"] == 550, res
    # One refused recipient fails the whole transaction: nothing is delivered to the others.
    res = send(mailbox, invitation(), ["joerg@example.com", "nobody@rejected.invalid"])
    assert res["status"] == "permanent" and res["smtp_code"] == 550, res
    assert mailbox.messages() == []


@pytest.mark.parametrize("where, code, status, relay", [
    ("recipient", 451, "temporary", False),
    ("sender", 421, "temporary", False),
    ("recipient", 452, "temporary", False),
    # A 5xx to MAIL FROM refuses our sender, not this recipient (review 14c M4): it waits for
    # the configuration (SMTP_FROM, the relay) to be fixed.
    ("sender", 554, "temporary", True),
    ("sender", 550, "temporary", True),
    ("sender", 530, "temporary", True),
    ("recipient", 553, "permanent", False),
    ("recipient", 550, "permanent", False),
])
def test_reply_code_decides(mailbox, where, code, status, relay):
    with mailbox.chaos(**{where: code}):
        res = send(mailbox, invitation(), ["joerg@example.com"])
    assert res["status"] == status and res["smtp_code"] == code, res
    assert res["relay"] is relay and res["step"] == where, res
    assert send(mailbox, invitation(), ["joerg@example.com"])["status"] == "sent"
    assert len(mailbox.wait_messages(1)) == 1


def test_auth_on_loopback(mailbox):
    """User and password are sent (AUTH) and accepted; a 535 refusal is temporary (our login,
    fixed in the configuration: review 14c M4), never a credential in the detail."""
    res = send(mailbox, invitation(), ["joerg@example.com"], user="rooms", password="s3cret")
    assert res["status"] == "sent", res
    [summary] = mailbox.wait_messages(1)
    assert mailbox.message(summary["ID"])["Username"] == "rooms"
    with mailbox.chaos(authentication=535):
        res = send(mailbox, invitation(), ["joerg@example.com"], user="rooms", password="x")
    assert res["status"] == "temporary" and res["smtp_code"] == 535, res
    assert res["relay"] is True and res["step"] == "auth", res
    assert "s3cret" not in res["detail"] and "cm9vbXM" not in res["detail"], res


def test_connection_refused_is_temporary(mailbox):
    res = send(mailbox, invitation(), ["joerg@example.com"], url=f"smtp://127.0.0.1:{free_port()}")
    assert res["status"] == "temporary" and res["smtp_code"] == 0, res


class FakeSmtp:
    """A listener on host that greets, answers EHLO without offering STARTTLS, accepts one
    message (or says nothing at all when silent; answers RCPT TO with rcpt_reply) and records
    every command it receives."""

    def __init__(self, host, silent=False, rcpt_reply=b"250 ok"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.silent = silent
        self.rcpt_reply = rcpt_reply
        self.commands = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            if self.silent:
                conn.recv(1024)
                time.sleep(5)
                return
            conn.sendall(b"220 fake ESMTP\r\n")
            f = conn.makefile("rb")
            for line in f:
                cmd = line.decode(errors="replace").strip()
                self.commands.append(cmd)
                if cmd.upper().startswith(("EHLO", "HELO")):
                    conn.sendall(b"250-fake\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")
                elif cmd.upper() == "DATA":
                    conn.sendall(b"354 go on\r\n")
                    for body in f:
                        if body == b".\r\n":
                            break
                    conn.sendall(b"250 queued\r\n")
                elif cmd.upper().startswith("RCPT"):
                    conn.sendall(self.rcpt_reply + b"\r\n")
                elif cmd.upper() == "QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 ok\r\n")

    def close(self):
        self.sock.close()


def outward_address():
    """An address of this machine that is not loopback, or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the route's source
        addr = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if addr.startswith("127.") else addr


def test_starttls_required_unless_loopback(mailbox):
    """smtp:// to a host that is not loopback: a server that does not offer STARTTLS gets no
    MAIL FROM and no credentials, and the outcome is temporary (an operator can fix it)."""
    host = outward_address()
    if host is None:
        pytest.skip("no address other than loopback on this machine")
    fake = FakeSmtp(host)
    try:
        res = send(mailbox, invitation(), ["joerg@example.com"], url=f"smtp://{host}:{fake.port}",
                   user="rooms", password="s3cret")
        fake.thread.join(5)
    finally:
        fake.close()
    assert res["status"] == "temporary" and res["relay"] is True, res  # a configuration fault
    assert fake.commands and fake.commands[0].upper().startswith("EHLO"), fake.commands
    assert not any(c.upper().startswith(("MAIL", "RCPT", "AUTH", "DATA")) for c in fake.commands), \
        fake.commands
    # The same plain server on loopback is fine (the message goes through).
    local = FakeSmtp("127.0.0.1")
    try:
        res = send(mailbox, invitation(), ["joerg@example.com"], url=f"smtp://127.0.0.1:{local.port}")
    finally:
        local.close()
    assert res["status"] == "sent", (res, local.commands)
    assert "MAIL FROM:<rooms@example.com>" in local.commands, local.commands


def test_silent_server_times_out_as_temporary(mailbox):
    fake = FakeSmtp("127.0.0.1", silent=True)
    try:
        t0 = time.monotonic()
        res = send(mailbox, invitation(), ["joerg@example.com"],
                   url=f"smtp://127.0.0.1:{fake.port}", timeout_ms=1000)
        took = time.monotonic() - t0
    finally:
        fake.close()
    assert res["status"] == "temporary" and res["smtp_code"] == 0, res
    assert took < 4, took


@pytest.mark.parametrize("reply, status, relay", [
    (b"554 5.7.1 <joerg@example.com>: Relay access denied", "temporary", True),
    (b"550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain", "temporary", True),
    (b"554 Relay access denied", "temporary", True),
    (b"550 5.1.1 <joerg@example.com>: Recipient address rejected: User unknown", "permanent",
     False),
    # A policy refusal of this recipient (review 14e L3): the recipient's, not the relay's.
    (b"554 5.7.1 <joerg@example.com>: Recipient address rejected: Access denied", "permanent",
     False),
])
def test_relaying_refused_at_rcpt_to_is_ours(mailbox, reply, status, relay):
    """A relay that will not relay for this client answers RCPT TO (review 14d-A L1): our
    login or the relay's policy, not the recipient, so temporary and counted as a relay
    refusal; an unknown recipient stays permanent."""
    fake = FakeSmtp("127.0.0.1", rcpt_reply=reply)
    try:
        res = send(mailbox, invitation(), ["joerg@example.com"],
                   url=f"smtp://127.0.0.1:{fake.port}")
        fake.thread.join(5)
    finally:
        fake.close()
    assert res["status"] == status and res["relay"] is relay, res
    assert res["step"] == "recipient" and res["smtp_code"] == int(reply[:3]), res
