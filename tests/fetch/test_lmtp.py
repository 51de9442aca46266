"""`fetch --to lmtp:`: Dovecot's real LMTP over its unix socket and over TCP, a scripted
LMTP server for the refusals (4xx/5xx to RCPT TO and to the message, a hang-up after
the final dot), bad targets and recipients, and kill -9 at every crash point of an LMTP
fetch and again inside its recovery.

The promises held: a message is deleted on the POP3 server only once the LMTP server
answered 250 to it and it was recorded; a refused or deferred message stays on the
server, unrecorded, and the next run delivers it; a message refused for good (a 5xx to
its MAIL FROM or after its dot) is named and left while the others are stored, and the
run is 69, every time; what the LMTP server stores is what POP3 gave, byte for byte
(minus the Return-Path and Delivered-To lines Dovecot adds); a kill can at most deliver
one message twice (the 250 cannot be taken back before the state records it), never
lose or cut one.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import crashpoints as cp
from tests import errorpoints as ep
from tests.fetchcases import LmtpCase, adding_users, after_recovery, check, lost_by_server
from tests.servers import require
from tests.servers.certs import Certs
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox, make_mailbox
from tests.servers.lmtp import (
    DRIBBLE,
    SILENT,
    LmtpDovecot,
    LmtpScript,
    maildir_messages,
    nothing_listens,
    require_lmtp,
    scripted_lmtp,
    stored_message,
)


@pytest.fixture(scope="module")
def lmtp_dovecot(certs: Certs) -> Iterator[LmtpDovecot]:
    require_lmtp()
    with LmtpDovecot(certs) as server:
        yield server


def message(number: int, *, return_path: str | None = None, lines: int = 3) -> bytes:
    """A message as the server stores it (LF): a dot line to stuff, a From line, a line
    that is only a dot, and `lines` of padding (many: it spans several pieces)."""
    head = f"Return-Path: <{return_path}>\n" if return_path is not None else ""
    padding = "".join(f"line {n} of message {number}\n" for n in range(lines))
    return (
        f"{head}From: s@example.test\nSubject: lmtp {number}\nMessage-ID: <l{number}@x.test>\n"
        f"\nbody {number}\n.a dot line\n.\n..two dots\nFrom the start\n{padding}end {number}\n"
    ).encode()


MESSAGES = [
    message(0, return_path="bounces@example.test"),
    message(1),
    message(2, return_path="", lines=6000),  # the null sender; ~150 KiB
]


def fetch_args(source: Mailbox, server: Dovecot, to: str, *extra: str) -> list[str]:
    where = ["--host", "127.0.0.1", "--port", str(server.pop3_port), "--security", "none"]
    return ["fetch", "--to", to, *where, "--user", source.user, *extra]


def environment(root: Path, source: Mailbox) -> dict[str, str]:
    return cp.base_env(root, MAILCLI_PASSWORD=source.password)


def source_with(server: Dovecot, messages: list[bytes]) -> Mailbox:
    source = make_mailbox(server, "ls")
    source.drop(*messages)
    return source


@pytest.mark.parametrize("transport", ["socket", "tcp"])
def test_dovecot_lmtp_stores_each_message_byte_identical_and_fetch_deletes_it_only_then(
    lmtp_dovecot: LmtpDovecot, tmp_path: Path, transport: str
) -> None:
    source = source_with(lmtp_dovecot, MESSAGES)
    target = make_mailbox(lmtp_dovecot, "lt")
    where = lmtp_dovecot.lmtp_socket if transport == "socket" else lmtp_dovecot.lmtp_port
    to = f"lmtp:{where}" if transport == "socket" else f"lmtp:127.0.0.1:{where}"
    args = fetch_args(source, lmtp_dovecot, to, "--delete", "--lmtp-rcpt", target.user)
    env = environment(tmp_path, source)

    done = cp.run([*args, "--json"], env)

    assert done.code == 0, done.stderr
    assert json.loads(done.stdout)["fetched"] == len(MESSAGES)
    stored = maildir_messages(target.maildir)
    assert sorted(stored_message(m) for m in stored) == sorted(MESSAGES)
    senders = sorted(m.split(b"\n", 1)[0] for m in stored)
    assert senders == [
        b"Return-Path: <>",
        b"Return-Path: <>",
        b"Return-Path: <bounces@example.test>",
    ]
    assert maildir_messages(source.maildir) == []  # deleted, after the 250s
    again = cp.run([*args, "--json"], env)
    assert (again.code, json.loads(again.stdout)["fetched"]) == (0, 0)
    assert len(maildir_messages(target.maildir)) == len(MESSAGES)


def test_trace_shows_the_lmtp_conversation_and_the_default_recipient_is_the_user(
    lmtp_dovecot: LmtpDovecot, tmp_path: Path
) -> None:
    source = source_with(lmtp_dovecot, MESSAGES[:2])
    script = LmtpScript()
    with scripted_lmtp(script) as server:
        to = f"lmtp:127.0.0.1:{server.port}"
        done = cp.run(
            ["--trace", *fetch_args(source, lmtp_dovecot, to)], environment(tmp_path, source)
        )

    assert done.code == 0, done.stderr
    assert script.envelopes == [
        ("MAIL FROM:<bounces@example.test>", f"RCPT TO:<{source.user}>"),
        ("MAIL FROM:<>", f"RCPT TO:<{source.user}>"),
    ]
    assert script.stored == [m.replace(b"\n", b"\r\n") for m in MESSAGES[:2]]
    trace = done.stderr.decode()
    for line in ("-> lhlo ", f"-> RCPT TO:<{source.user}>", "-> DATA", "<- 354 OK"):
        assert line in trace
    assert "<- 250 2.0.0 <x> Saved" in trace


@pytest.mark.parametrize("closing", ["421 4.4.2 scripted: idle for too long", ""])
def test_a_session_the_lmtp_server_closed_while_idle_is_opened_again(
    lmtp_dovecot: LmtpDovecot, tmp_path: Path, closing: str
) -> None:
    source = source_with(lmtp_dovecot, MESSAGES)
    script = LmtpScript(closing=closing)
    with scripted_lmtp(script) as server:
        to = f"lmtp:127.0.0.1:{server.port}"
        args = [*fetch_args(source, lmtp_dovecot, to, "--delete"), "--json"]
        done = cp.run(args, environment(tmp_path, source))

    assert done.code == 0, done.stderr
    assert json.loads(done.stdout)["fetched"] == len(MESSAGES)
    assert script.stored == [m.replace(b"\n", b"\r\n") for m in MESSAGES]
    assert maildir_messages(source.maildir) == []


def test_an_lmtp_server_on_ipv6_loopback_is_reached_by_its_bracketed_address(
    lmtp_dovecot: LmtpDovecot, tmp_path: Path
) -> None:
    source = source_with(lmtp_dovecot, MESSAGES[:2])
    script = LmtpScript()
    with scripted_lmtp(script, ipv6=True) as server:
        to = f"lmtp:[::1]:{server.port}"
        done = cp.run(
            ["--trace", *fetch_args(source, lmtp_dovecot, to)], environment(tmp_path, source)
        )

    assert done.code == 0, done.stderr
    assert f"connecting to LMTP [::1]:{server.port}".encode() in done.stderr
    assert script.stored == [m.replace(b"\n", b"\r\n") for m in MESSAGES[:2]]


def test_the_accounts_lmtp_rcpt_key_is_the_recipient_and_the_option_overrides_it(
    lmtp_dovecot: LmtpDovecot, tmp_path: Path
) -> None:
    source = source_with(lmtp_dovecot, MESSAGES[:1])
    env = environment(tmp_path, source)
    config = tmp_path / ".config" / "mailcli" / "config.toml"
    config.parent.mkdir(parents=True)
    script = LmtpScript()
    with scripted_lmtp(script) as server:
        config.write_text(
            f'[accounts.box]\nuser = "{source.user}"\n'
            f'[accounts.box.pop3]\nhost = "127.0.0.1"\nport = {lmtp_dovecot.pop3_port}\n'
            'security = "none"\n'
            f'[accounts.box.fetch]\nto = "lmtp:127.0.0.1:{server.port}"\n'
            'lmtp_rcpt = "from-the-key@example.test"\n'
        )
        assert cp.run(["fetch", "-a", "box"], env).code == 0
        source.drop(MESSAGES[1])
        assert cp.run(["fetch", "-a", "box", "--lmtp-rcpt", "opt@example.test"], env).code == 0

    assert [rcpt for _, rcpt in script.envelopes] == [
        "RCPT TO:<from-the-key@example.test>",
        "RCPT TO:<opt@example.test>",
    ]


def test_an_lmtp_target_is_a_socket_path_or_host_and_port() -> None:
    from mailcli.fetch.lmtp import LmtpTarget, parse_target

    assert parse_target("/run/dovecot/lmtp") == LmtpTarget("/run/dovecot/lmtp")
    assert parse_target("127.0.0.1:24") == LmtpTarget(None, "127.0.0.1", 24)
    assert parse_target("[::1]:24") == LmtpTarget(None, "::1", 24)
    assert str(parse_target("[::1]:24")) == "[::1]:24"
    assert parse_target("mail.example.test:2003") == LmtpTarget(None, "mail.example.test", 2003)


# (what the scripted server answers to RCPT TO, and to each message after its dot): each
# ends the run. A 5xx to one message does not (below).
REFUSALS: dict[str, tuple[str, list[str | None], int]] = {
    "rcpt-4xx": ("450 4.2.0 Mailbox busy", ["250 2.0.0 Saved"], 75),
    "rcpt-5xx": ("550 5.1.1 User doesn't exist", ["250 2.0.0 Saved"], 69),
    "hostile-rcpt-5xx-text": ("550 5.1.1 \x00\x1b[31m\rno", ["250 2.0.0 Saved"], 69),
    "message-4xx": ("250 2.1.5 OK", ["250 2.0.0 Saved", "452 4.2.2 Over quota"], 75),
    "hang-up-after-dot": ("250 2.1.5 OK", ["250 2.0.0 Saved", None], 75),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_a_refused_or_deferred_message_stays_on_the_server_and_a_rerun_delivers_it_once(
    lmtp_dovecot: LmtpDovecot, tmp_path: Path, name: str
) -> None:
    rcpt, finals, status = REFUSALS[name]
    source = source_with(lmtp_dovecot, MESSAGES)
    env = environment(tmp_path, source)
    refusing = LmtpScript(rcpt=rcpt, finals=finals)
    with scripted_lmtp(refusing) as server:
        args = fetch_args(source, lmtp_dovecot, f"lmtp:127.0.0.1:{server.port}", "--delete")
        done = cp.run(args, env)

    assert done.code == status, done.stderr
    assert done.stderr.count(b"\n") == 1 and done.stderr.startswith(b"mailcli: error: ")
    assert b"kept on the server" in done.stderr
    assert not re.search(rb"[\x00-\x09\x0b-\x1f\x7f]", done.stderr)  # one clean line
    assert len(maildir_messages(source.maildir)) == len(MESSAGES)  # no DELE took effect
    good = LmtpScript()
    with scripted_lmtp(good) as server:
        args = fetch_args(source, lmtp_dovecot, f"lmtp:127.0.0.1:{server.port}", "--delete")
        assert cp.run(args, env).code == 0
    delivered = refusing.stored + good.stored
    assert sorted(delivered) == sorted(m.replace(b"\n", b"\r\n") for m in MESSAGES)
    assert maildir_messages(source.maildir) == []


FOUR = [message(0), message(1, return_path="refused@example.test"), message(2), message(3)]
HOSTILE = "\x00\x1b[31m\rnot this one"
REFUSING: dict[str, Callable[[], LmtpScript]] = {  # the 2nd of FOUR refused for good
    "message": lambda: LmtpScript(refuse={b"Subject: lmtp 1\r\n": f"550 5.7.1 {HOSTILE}"}),
    "sender": lambda: LmtpScript(
        senders={"MAIL FROM:<refused@example.test>": f"553 5.1.8 {HOSTILE}"}
    ),
}


@pytest.mark.parametrize("delete", [False, True], ids=["keep", "delete"])
@pytest.mark.parametrize("stage", list(REFUSING))
def test_a_message_refused_for_good_stays_on_the_server_the_others_are_stored_and_it_is_69(
    lmtp_dovecot: LmtpDovecot, tmp_path: Path, stage: str, delete: bool
) -> None:
    source = source_with(lmtp_dovecot, FOUR)
    env = environment(tmp_path, source)
    script = REFUSING[stage]()
    with scripted_lmtp(script) as server:
        to = f"lmtp:127.0.0.1:{server.port}"
        args = fetch_args(source, lmtp_dovecot, to, *(["--delete"] if delete else []))
        first, again = cp.run(args, env), cp.run([*args, "--json"], env)

    assert (first.code, again.code) == (69, 69), first.stderr
    assert script.stored == [FOUR[n].replace(b"\n", b"\r\n") for n in (0, 2, 3)]  # once each
    said = re.fullmatch(
        rb"mailcli: error: message 2 \(uid '([^']+)'\) not delivered: (.*)\n", first.stderr
    )
    assert said, first.stderr  # one line, naming it
    assert (b"the message: " if stage == "message" else b"MAIL FROM: ") in said[2]
    assert b"kept on the server" in said[2]
    assert not re.search(rb"[\x00-\x09\x0b-\x1f\x7f]", first.stderr)
    number = b"1" if delete else b"2"  # the others were deleted: it is the first now
    assert again.stderr == first.stderr.replace(b"message 2 ", b"message " + number + b" ", 1)
    summary = json.loads(again.stdout)
    assert summary["fetched"] == 0  # the rerun stored nothing new
    assert [(m["number"], m["uid"]) for m in summary["refused_messages"]] == [
        (int(number), said[1].decode())
    ]
    left = maildir_messages(source.maildir)
    assert sorted(left) == sorted([FOUR[1]] if delete else FOUR)


@pytest.mark.parametrize("behaviour", [SILENT, DRIBBLE])
@pytest.mark.parametrize("where", ["greeting", "message"])
def test_a_silent_lmtp_server_is_75_within_the_timeout_and_the_mail_stays(
    lmtp_dovecot: LmtpDovecot, tmp_path: Path, where: str, behaviour: str
) -> None:
    source = source_with(lmtp_dovecot, MESSAGES[:2])
    env = environment(tmp_path, source)
    silent = (
        LmtpScript(greeting=None if behaviour == SILENT else DRIBBLE)
        if where == "greeting"
        else LmtpScript(finals=[behaviour])
    )
    with scripted_lmtp(silent) as server:
        to = f"lmtp:127.0.0.1:{server.port}"
        done = cp.run([*fetch_args(source, lmtp_dovecot, to, "--delete"), "--timeout", "1"], env)

    assert done.code == 75, done.stderr
    assert done.stderr.count(b"\n") == 1 and b"1 s" in done.stderr
    assert len(maildir_messages(source.maildir)) == 2


@pytest.mark.parametrize(
    ("to", "rcpt", "status"),
    [
        ("lmtp:", None, 64),
        ("lmtp:localhost", None, 64),
        ("lmtp:127.0.0.1:0", None, 64),
        ("lmtp:[::1]", None, 64),
        ("lmtp:127.0.0.1:24", "a b@example.test", 65),
        ("lmtp:127.0.0.1:24", "a@example.test\r\nRCPT TO:<x>", 65),
        ("lmtp:127.0.0.1:24", "<a@example.test>", 65),
    ],
)
def test_a_bad_target_or_recipient_is_refused_before_any_connection(
    lmtp_dovecot: LmtpDovecot, tmp_path: Path, to: str, rcpt: str | None, status: int
) -> None:
    source = source_with(lmtp_dovecot, MESSAGES[:1])
    extra = ["--lmtp-rcpt", rcpt] if rcpt is not None else []
    done = cp.run(
        fetch_args(source, lmtp_dovecot, to, "--delete", *extra), environment(tmp_path, source)
    )

    assert done.code == status, done.stderr
    assert done.stderr.count(b"\n") == 1 and done.stderr.startswith(b"mailcli: error: ")
    assert f"Login: user=<{source.user}>" not in lmtp_dovecot.log()
    assert len(maildir_messages(source.maildir)) == 1


@pytest.mark.parametrize("missing", ["no-socket", "not-listening", "refused-port"])
def test_an_lmtp_server_that_is_not_there_is_69_and_the_mail_stays(
    lmtp_dovecot: LmtpDovecot, tmp_path: Path, missing: str
) -> None:
    source = source_with(lmtp_dovecot, MESSAGES[:2])
    socket_path = tmp_path / "lmtp.sock"
    if missing == "not-listening":
        nothing_listens(socket_path)
    to = f"lmtp:{socket_path}"
    if missing == "refused-port":
        from tests.servers.ports import free_port

        to = f"lmtp:127.0.0.1:{free_port()}"
    env = environment(tmp_path / "home", source)
    done = cp.run(fetch_args(source, lmtp_dovecot, to, "--delete"), env)

    assert done.code == 69, done.stderr
    assert done.stderr.count(b"\n") == 1 and b"LMTP server" in done.stderr
    assert len(maildir_messages(source.maildir)) == 2
    target = make_mailbox(lmtp_dovecot, "lt")
    args = fetch_args(source, lmtp_dovecot, f"lmtp:{lmtp_dovecot.lmtp_socket}", "--delete")
    assert cp.run([*args, "--lmtp-rcpt", target.user], env).code == 0
    assert sorted(stored_message(m) for m in maildir_messages(target.maildir)) == sorted(
        MESSAGES[:2]
    )


def test_a_dry_run_into_lmtp_connects_to_nothing(lmtp_dovecot: LmtpDovecot, tmp_path: Path) -> None:
    source = source_with(lmtp_dovecot, MESSAGES[:2])
    to = f"lmtp:{tmp_path / 'nothing-here.sock'}"
    done = cp.run(
        fetch_args(source, lmtp_dovecot, to, "--dry-run", "--json"), environment(tmp_path, source)
    )

    assert done.code == 0, done.stderr
    assert json.loads(done.stdout)["would_fetch"] == 2


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64])
def test_dot_stuffing_is_the_same_whatever_the_pieces(size: int) -> None:
    from mailcli.fetch.lmtp import DotStuffer
    from mailcli.network import dot_stuff

    for body in [b"", b".", b".\r\n", b"a\r\n.\r\n..\r\n.b\r\nc", b"x\r\r\n.\n.\r\n", b"\r\n.."]:
        data = DotStuffer(io.BytesIO(body))
        wire = b"".join(data.pieces(size)) + data.end()
        whole = dot_stuff(body)
        ending = b"" if body == b"" or body.endswith(b"\r\n") else b"\r\n"
        assert wire == whole + ending + b".\r\n", (body, size)
        assert data.octets == len(body)


# -- crash points ------------------------------------------------------------------------

# The recovery run's own crash: its first write(2), the first message's spool file.
RECOVERY_CRASH = cp.CrashPoint("write", 1)


def crash_case(case: LmtpCase, point: cp.CrashPoint, index: int, doubles: list[bool]) -> list[str]:
    """Kill at `point`, deliver foreign mail to the target, kill the recovery run at
    RECOVERY_CRASH, run to completion, then a run that must fetch nothing."""
    first = cp.run(case.args, case.env, point=point)
    if not first.killed:
        return [f"not reached (exit {first.code}): the syscall count is not deterministic"]
    problems = lost_by_server(case)
    case.append_foreign(f"after crash {index}")
    second = cp.run(case.args, case.env, point=RECOVERY_CRASH)
    return problems + after_recovery(case, second, doubles)


def enumerate_lmtp(server: LmtpDovecot, tmp_path: Path, delete: bool, budget: int | None) -> None:
    require("strace")
    probe = LmtpCase(server, tmp_path / "count", "lmtp", delete)
    counted, points = cp.count(probe.args, probe.env, tmp_path / "count.log")
    assert counted.code == 0, counted.stderr
    assert check(probe, crashes=0) == []
    chosen = cp.select(points, budget, seed=len(points))
    doubles: list[bool] = []

    def one(numbered: tuple[int, cp.CrashPoint]) -> list[str]:
        index, point = numbered
        with adding_users:
            case = LmtpCase(server, tmp_path / f"p{index}", "lmtp", delete)
        return [f"{point}: {p}" for p in crash_case(case, point, index, doubles)]

    failures = [f for found in cp.map_cases(one, enumerate(chosen)) for f in found]
    name = f"fetch lmtp{' --delete' if delete else ''}"
    row = {"crash_points": len(points), "boundaries": len(cp.boundaries(points))}
    row |= {"run": len(chosen), "double_crashes": sum(doubles), "every_point": budget is None}
    cp.record(name, row, tmp_path / "crashpoints.json")
    assert not failures, cp.fail_report(failures)


@pytest.mark.parametrize("delete", [False, True], ids=["keep", "delete"])
def test_lmtp_fetch_survives_a_kill_at_every_class_boundary(
    lmtp_dovecot: LmtpDovecot, tmp_path: Path, delete: bool
) -> None:
    enumerate_lmtp(lmtp_dovecot, tmp_path, delete, cp.budget())


@pytest.mark.soak
@pytest.mark.parametrize("delete", [False, True], ids=["keep", "delete"])
def test_lmtp_fetch_survives_a_kill_at_every_crash_point(
    lmtp_dovecot: LmtpDovecot, tmp_path: Path, delete: bool
) -> None:
    enumerate_lmtp(lmtp_dovecot, tmp_path, delete, None)


# -- error points ------------------------------------------------------------------------

ERROR_INVARIANTS = [
    "the failed run exits 0, 73, 74 or 75 with an error line (never 70, no traceback)",
    "no temporary file left",
    "the server deleted only what was delivered and recorded",
    "with the disk back, a rerun completes; every server message delivered (at most once "
    "more when the state could not record a 250), byte-identical; foreign mail kept",
]


def enumerate_lmtp_errors(server: LmtpDovecot, tmp_path: Path, budget: int | None) -> None:
    """ENOSPC/EIO at the chosen calls on the files an LMTP fetch writes (its spool file,
    the state, the lock), then a rerun with the disk back (tests/errorpoints.py)."""
    require("strace")
    with adding_users:
        probe = LmtpCase(server, tmp_path / "count", "lmtp", True)
    log = tmp_path / "count.log"
    counted, points = cp.count(probe.args, probe.env, log, syscalls=ep.ERROR_SYSCALLS)
    assert counted.code == 0, counted.stderr
    chosen = ep.select(points, probe.root, budget, seed=len(points))

    def one(numbered: tuple[int, ep.ErrorPoint]) -> list[str]:
        index, where = numbered
        with adding_users:
            case = LmtpCase(server, tmp_path / f"p{index}", "lmtp", True)
        failed, problems = ep.fail_at(where, case.args, case.env, tmp_path / f"p{index}.log")
        problems += ep.leftovers(case.root, where=where) + lost_by_server(case)
        rerun = cp.run([*case.args, "--json"], case.env)
        problems += cp.exit_problem("rerun", rerun)
        problems += check(case, crashes=int(failed.code != 0))
        return [f"{where}: {p} (failed run exit {failed.code})" for p in problems]

    failures = [f for found in cp.map_cases(one, enumerate(chosen)) for f in found]
    row = {"error_points": len(ep.select(points, probe.root, None, 0))}
    row |= {"boundaries": ep.boundary_count(points, probe.root), "run": len(chosen)}
    ep.record("fetch lmtp --delete", {**row, "invariants": ERROR_INVARIANTS}, tmp_path)
    assert not failures, ep.fail_report(failures)


def test_lmtp_fetch_survives_an_error_at_every_class_boundary(
    lmtp_dovecot: LmtpDovecot, tmp_path: Path
) -> None:
    enumerate_lmtp_errors(lmtp_dovecot, tmp_path, cp.budget())


@pytest.mark.soak
def test_lmtp_fetch_survives_every_error_at_every_point(
    lmtp_dovecot: LmtpDovecot, tmp_path: Path
) -> None:
    enumerate_lmtp_errors(lmtp_dovecot, tmp_path, None)


def test_sigterm_at_each_lmtp_write_of_a_message_exits_143_and_loses_nothing(
    lmtp_dovecot: LmtpDovecot, tmp_path: Path
) -> None:
    """SIGTERM (strace, on entry to the call) at every socket write of the first LMTP
    transaction: MAIL/RCPT/DATA, the message, its dot."""
    require("strace")
    with adding_users:
        probe = LmtpCase(lmtp_dovecot, tmp_path / "count", "lmtp", True)
    counted, points = cp.count(probe.args, probe.env, tmp_path / "count.log")
    assert counted.code == 0, counted.stderr
    lmtp = [p for p in points if "UNIX-STREAM" in p.label]
    batch = next(p.batch for p in lmtp if p.what == "socket MAIL")
    first = [p for p in lmtp if p.batch == batch]  # the message's bytes are "session"
    assert [p.what for p in first] == ["socket MAIL", "socket session", "socket data"]
    for index, point in enumerate(first):
        with adding_users:
            case = LmtpCase(lmtp_dovecot, tmp_path / f"p{index}", "lmtp", True)
        stopped = cp.run(case.args, case.env, point=point, signal="SIGTERM")
        assert stopped.code == 143, (point, stopped.stderr)
        assert lost_by_server(case) == []
        assert cp.run(case.args, case.env).code == 0
        assert check(case, crashes=1) == [], point
