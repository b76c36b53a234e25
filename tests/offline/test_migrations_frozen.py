"""A migration that reached main is never edited (docs/architecture.md, "Migrations are frozen"):
the databases that ran it keep what it did and never run it again, so an edit would only reach new
databases, and the two would differ.  A change goes into a new migration.

tests/offline/migrations.sha256 holds the SHA-256 of every migration that has landed: each
service's <service>/migrations/NNN_name.sql byte for byte, and each of the shared library's
migrations (svc_common_migrations in common/src/svc.c, recorded as "common:NNN_name") as the SQL
text the database receives, read from its C string literal (so re-wrapping the literal changes
nothing, changing the SQL does).  A listed migration that changed or disappeared fails, named.
A migration that is not listed yet is allowed: it is added to the manifest when it lands on main,
by running this file as a script, which prints the lines of those not listed:

    python3 tests/offline/test_migrations_frozen.py >> tests/offline/migrations.sha256
"""

import hashlib
import re
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = Path(__file__).resolve().parent / "migrations.sha256"
SERVICES = ("user-service", "room-service", "reservation-service")
REFRESH = "python3 tests/offline/test_migrations_frozen.py >> tests/offline/migrations.sha256"

C_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\", "?": "?"}
# What may stand between `const char NAME[] =` and its `;`: blanks, comments, string literals.
C_TOKEN = re.compile(r'\s+|/\*.*?\*/|//[^\n]*|"((?:[^"\\\n]|\\.)*)"', re.S)


def c_string(source, name):
    """The value of `const char name[] = "…" "…";` in C source (adjacent literals joined,
    escapes decoded).  Anything else in the initializer (a macro, a number) is refused: the
    text the database receives could not be known from the source alone."""
    m = re.search(r"\bconst char " + re.escape(name) + r"\[\]\s*=", source)
    if not m:
        raise ValueError(f"no definition of {name}")
    pos, parts = m.end(), []
    while source[pos] != ";":
        tok = C_TOKEN.match(source, pos)
        if not tok:
            raise ValueError(f"{name}: cannot read {source[pos:pos + 40]!r} as a string literal")
        if tok.group(1) is not None:
            parts.append(re.sub(r"\\(.)", lambda e: C_ESCAPES[e.group(1)], tok.group(1)))
        pos = tok.end()
    return "".join(parts)


def common_migrations():
    """{"common:NNN_name": SQL text} for the shared library's migrations."""
    svc = (ROOT / "common" / "src" / "svc.c").read_text()
    table = re.search(r"svc_common_migrations\[\]\s*=\s*\{(.*?)\n\};", svc, re.S)
    assert table, "svc_common_migrations not found in common/src/svc.c"
    sources = "\n".join(p.read_text() for p in sorted((ROOT / "common" / "src").glob("*.c")))
    found = {}
    for _, label, symbol in re.findall(r'\{\s*(\d+)\s*,\s*"([^"]+)"\s*,\s*(\w+)\s*\}',
                                       table.group(1)):
        found[f"common:{label}"] = c_string(sources, symbol).encode()
    assert found, "svc_common_migrations lists no migration"
    return found


def current():
    """{name: bytes} of every migration in the tree."""
    found = {}
    for service in SERVICES:
        for path in sorted((ROOT / service / "migrations").glob("*.sql")):
            found[path.relative_to(ROOT).as_posix()] = path.read_bytes()
    found.update(common_migrations())
    return found


def manifest():
    """{name: sha256 hex} from the manifest, in `sha256sum` format; '#' starts a comment."""
    listed = {}
    for number, line in enumerate(MANIFEST.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = re.fullmatch(r"([0-9a-f]{64})  (\S+)", line)
        assert m, f"{MANIFEST.name}:{number}: not '<sha256>  <name>': {line!r}"
        assert m.group(2) not in listed, f"{MANIFEST.name}:{number}: {m.group(2)} listed twice"
        listed[m.group(2)] = m.group(1)
    return listed


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def version(name):
    """(where, number) of a migration's name: ("reservation-service", 11), ("common", 4)."""
    m = re.fullmatch(r"(.+)/migrations/(\d+)_[^/]*|common:(\d+)_.*", name)
    assert m, f"{name}: not NNN_name"
    return (m.group(1), int(m.group(2))) if m.group(1) else ("common", int(m.group(3)))


def test_landed_migrations_are_unchanged():
    now, problems = current(), []
    for name, digest in manifest().items():
        if name not in now:
            problems.append(f"{name} has landed on main and is gone (renamed or deleted)")
        elif sha256(now[name]) != digest:
            problems.append(f"{name} has landed on main and was edited")
    assert not problems, (
        "\n".join(problems) + "\nA migration that reached main is never edited: put the change "
        "into a new migration (docs/architecture.md, \"Migrations are frozen\").")


def test_new_migrations_take_new_numbers():
    """A new migration that took the number of a landed one would never run where that one
    has: the ledgers record numbers."""
    listed = manifest()
    taken = {version(name): name for name in listed}
    for name in current():
        if name not in listed and version(name) in taken:
            raise AssertionError(f"{name} takes the number of {taken[version(name)]}, which has "
                                 "landed: give it the next free number")


def test_unlisted_migrations_are_named():
    """Allowed, and said: the manifest wants them once they are on main."""
    listed = manifest()
    for name in current():
        if name not in listed:
            warnings.warn(f"{name} is not in {MANIFEST.name}: add it when it lands on main "
                          f"({REFRESH})", stacklevel=1)


def test_manifest_lists_the_first_migrations():
    """The manifest is read at all: a wrong path or an emptied file would pass the tests above."""
    listed = manifest()
    for name in ("user-service/migrations/001_users.sql", "room-service/migrations/001_rooms.sql",
                 "reservation-service/migrations/001_reservations.sql", "common:001_outbox"):
        assert name in listed, f"{name} is missing from {MANIFEST.name}"


def test_common_migration_text_is_read_from_its_literal():
    source = 'const char x[] =\n\t"a\\n" /* note */ "b\\"c\\\\"\n\t// more\n\t"d";\n'
    assert c_string(source, "x") == 'a\nb"c\\d'
    try:
        c_string('const char y[] = "a" MACRO "b";', "y")
    except ValueError as e:
        assert "MACRO" in str(e)
    else:
        raise AssertionError("a macro in the literal was not refused")


if __name__ == "__main__":
    # The manifest lines of the migrations not listed yet (see the module's docstring).
    listed = manifest() if MANIFEST.exists() else {}
    for name, data in current().items():
        if name not in listed:
            sys.stdout.write(f"{sha256(data)}  {name}\n")
