"""spark.properties edits read back through java.util.Properties, the way spark-submit reads them.

The table of hard inputs (tests/data/props) and a batch of random files are edited by
tests/tools/props-edit (props_replace_token) and then loaded, originals and results, in ONE run
of tests/java/PropsCheck.java. For every file: the token is exactly the key's value and every
other key and value is unchanged. The random files also have a byte oracle: the generator knows
where each token value is, so the expected bytes are known exactly.
"""

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

KEY = "spark.kubernetes.authenticate.submission.oauthToken"
PROPS_EDIT = os.path.join(harness.BUILD, "tests", "tools", "props-edit")
CHECKER = os.path.join(harness.SOURCE, "tests", "java", "PropsCheck.java")
TABLE = os.path.join(harness.SOURCE, "tests", "data", "props")
N_RANDOM = int(os.environ.get("AKSSPARK_PROPS_RANDOM", "1000"))


def store_escape(value):
    """Properties.store's escaping of a value (what props_escape_value must produce)."""
    out = []
    for i, ch in enumerate(value):
        if ch == "\\":
            out.append("\\\\")
        elif ch == " ":
            out.append("\\ " if i == 0 else " ")
        elif ch in "\t\n\r\f":
            out.append({"\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f"}[ch])
        elif ch in "=:#!":
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) > 0x7E:
            units = ch.encode("utf-16-be")
            for k in range(0, len(units), 2):
                out.append("\\u%02X%02X" % (units[k], units[k + 1]))
        else:
            out.append(ch)
    return "".join(out).encode("ascii")


def first_line_end(data):
    for i, b in enumerate(data):
        if b == 0x0A:
            return b"\n"
        if b == 0x0D:
            return b"\r\n" if data[i + 1:i + 2] == b"\n" else b"\r"
    return b"\n"


class Generator:
    """Random spark.properties files built from pieces whose meaning to Properties.load is known.
    Each file is a list of (bytes, is_token_value) pieces; the expected edit replaces the token
    values (and adds '=' where a token line has no separator at all)."""

    SAFE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/"

    def __init__(self, seed):
        self.r = random.Random(seed)

    def eol(self, style):
        return self.r.choice([b"\n", b"\r\n", b"\r"]) if style is None else style

    def ws(self, maxlen=3):
        return bytes(self.r.choice(b" \t\f") for _ in range(self.r.randint(0, maxlen)))

    def cont(self, style):
        """A continuation: odd backslash, line end, blanks the next line starts with."""
        return b"\\" + self.eol(style) + bytes(self.r.choice(b" \t") for _ in range(self.r.randint(0, 4)))

    def key_atoms_token(self):
        atoms = []
        for ch in KEY:
            roll = self.r.random()
            if roll < 0.06:
                atoms.append(("\\u%04" + self.r.choice("xX")) % ord(ch))
            elif roll < 0.10 and ch not in "trnfu":
                atoms.append("\\" + ch)
            else:
                atoms.append(ch)
        return [a.encode() for a in atoms]

    def key_atoms_other(self):
        kind = self.r.random()
        if kind < 0.15:  # near misses of the token key
            near = self.r.choice([
                KEY + "2", KEY[:-1], "x" + KEY, KEY.replace("oauth", "oauth\\="),
                KEY.replace("Token", "\\ Token"), KEY + "\\t", KEY.replace(".", "\\:", 1),
            ])
            atoms, i = [], 0
            while i < len(near):  # keep escapes whole
                n = 2 if near[i] == "\\" else 1
                atoms.append(near[i:i + n].encode())
                i += n
            return atoms
        atoms = []
        for _ in range(self.r.randint(0, 24)):
            roll = self.r.random()
            if roll < 0.70:
                atoms.append(self.r.choice(self.SAFE).encode())
            else:
                atoms.append(self.r.choice([
                    b"\\=", b"\\:", b"\\ ", b"\\#", b"\\!", b"\\\\", b"\\t", b"\\u00e9", b"\\u2713",
                    "\u00fc".encode(), "\u2713".encode(), "\U0001F600".encode(), b"\xff", b"\xc3", b"#", b"!",
                ]))
        if atoms and atoms[0] in (b"#", b"!"):
            atoms[0] = b"\\" + atoms[0]
        return atoms

    def value_atoms(self):
        atoms = []
        for _ in range(self.r.randint(0, 30)):
            roll = self.r.random()
            if roll < 0.65:
                atoms.append(self.r.choice(self.SAFE + " =:#!").encode())
            else:
                atoms.append(self.r.choice([
                    b"\\\\", b"\\t", b"\\n", b"\\u00e9", b"\\uD83D\\uDE00", b"\\=", b"\\ ", b"\\#",
                    "\u00fc".encode(), "\u2713".encode(), "\U0001F600".encode(), b"\xff", b"\xfe\xc3",
                    b"k8s://https://x.hcp.westeurope.azmk8s.io:443", b"\xef\xbb\xbf",
                ]))
        # The value must start where load thinks it starts: no blank or separator first.
        if atoms and atoms[0] in (b" ", b"=", b":"):
            atoms[0] = b"\\" + atoms[0]
        return atoms

    def join(self, atoms, style, allow_cont):
        out = b""
        for i, a in enumerate(atoms):
            # Not before a blank: load would skip it as the next line's indentation.
            if i > 0 and allow_cont and not a[:1].isspace() and self.r.random() < 0.05:
                out += self.cont(style)
            out += a
        return out

    def sep(self, has_value):
        choices = [b"=", b":", b" ", b"\t", b" = ", b"  :  ", b"\f", b" " * self.r.randint(2, 30),
                   b" " * self.r.randint(1, 20) + b"= "]
        if not has_value:
            choices.append(b"")
        return self.r.choice(choices)

    def file(self):
        """Returns pieces: a list of (bytes, kind) with kind None, "value" or "nosep"."""
        style = None if self.r.random() < 0.1 else self.r.choice([b"\n", b"\r\n", b"\r"])
        pieces = []
        if self.r.random() < 0.05:
            pieces.append((b"\xef\xbb\xbf", None))
        n = self.r.randint(0, 25)
        for i in range(n):
            last = i == n - 1
            final_eol = not (last and self.r.random() < 0.25)
            item_eol = self.eol(style) if final_eol else b""
            kind = self.r.random()
            if i == 0 and pieces:
                # After a BOM the first line's key starts with U+FEFF (Java keeps it): not a
                # comment, not a blank line, never our key. Make it a plain entry.
                kind = 0.45 + 0.55 * self.r.random()
            if kind < 0.10:
                pieces.append((self.ws() + item_eol, None))
                continue
            if kind < 0.25:
                text = self.r.choice(["", " note", " " + KEY + "=old", " trailing \\", " \u00fc\u2713", "\\"])
                pieces.append((self.ws() + self.r.choice([b"#", b"!"]) + text.encode() + item_eol, None))
                continue
            is_token = kind < 0.45
            key = self.join(self.key_atoms_token() if is_token else self.key_atoms_other(), style, True)
            if not key and not is_token:
                key = b"k"
            value = self.join(self.value_atoms(), style, True)
            # Sometimes a continuation runs into an empty line, which ends the logical line.
            if value and final_eol and self.r.random() < 0.05:
                cont_eol = self.eol(style)
                value += b"\\" + cont_eol
                if cont_eol == b"\r" and item_eol == b"\n":
                    item_eol = b"\r"
            sep = self.sep(bool(value))
            pieces.append((self.ws() + key + sep, None))
            if is_token:
                pieces.append((value, "nosep" if sep == b"" and not value else "value"))
            else:
                pieces.append((value, None))
            pieces.append((item_eol, None))
        return pieces

    @staticmethod
    def expected(pieces, token_escaped):
        orig = b"".join(p for p, _ in pieces)
        if not any(kind for _, kind in pieces):
            return orig, None
        out = b""
        for p, kind in pieces:
            if kind == "value":
                out += token_escaped
            elif kind == "nosep":
                out += b"=" + token_escaped
            else:
                out += p
        return orig, out

    def token(self):
        if self.r.random() < 0.8:
            alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
            parts = ["".join(self.r.choice(alphabet) for _ in range(self.r.randint(10, 900))) for _ in range(3)]
            return ".".join(parts)
        return self.r.choice([" leading space", "a=b:c#d!e\\f", "tab\there", "\u00fcnic\u00f6de \u2713 \U0001F600",
                              "=starts", ":colon", "#hash", "ends with space ", "\\u0041 literal"])


class PropsJavaTest(unittest.TestCase):
    def setUp(self):
        self.assertTrue(os.path.exists(PROPS_EDIT), PROPS_EDIT)
        self.tmp = tempfile.mkdtemp(prefix="aksspark-props-java.")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def props_edit(self, token, pairs):
        token_path = os.path.join(self.tmp, "token.%d" % len(os.listdir(self.tmp)))
        with open(token_path, "wb") as f:
            f.write(token.encode())
        args = [PROPS_EDIT, token_path]
        for a, b in pairs:
            args += [a, b]
        subprocess.run(args, check=True)

    def java_load(self, files):
        listing = os.path.join(self.tmp, "list.txt")
        with open(listing, "w") as f:
            f.write("\n".join(files) + "\n")
        proc = subprocess.run(["java", CHECKER, "--list", listing], capture_output=True, check=True, timeout=600)
        results = {}
        for line in proc.stdout.decode("ascii").splitlines():
            entry = json.loads(line)
            results[entry["file"]] = entry
        self.assertEqual(len(results), len(files))
        return results

    def check_pair(self, name, before, after, token):
        self.assertTrue(after["ok"], "%s: the edited file does not load: %s" % (name, after.get("error")))
        props = after["props"]
        self.assertEqual(props.get(KEY), token, "%s: wrong token value" % name)
        if not before["ok"]:
            return  # the old value was malformed; only the edit could make the file loadable
        old = dict(before["props"])
        old.pop(KEY, None)
        new = dict(props)
        new.pop(KEY)
        self.assertEqual(new, old, "%s: other keys changed" % name)

    def test_table_and_random_batch(self):
        # The table, with the token the expected files were made with.
        with open(os.path.join(TABLE, "TOKEN")) as f:
            table_token = f.read()
        table = sorted(n[:-3] for n in os.listdir(TABLE) if n.endswith(".in"))
        self.assertGreaterEqual(len(table), 40)
        pairs = [(os.path.join(TABLE, n + ".in"), os.path.join(self.tmp, n + ".edited")) for n in table]
        self.props_edit(table_token, pairs)
        for (src, dst), n in zip(pairs, table):
            with open(dst, "rb") as a, open(os.path.join(TABLE, n + ".out"), "rb") as b:
                self.assertEqual(a.read(), b.read(), "table case %s: props-edit differs from the .out file" % n)

        # The random batch: a handful of tokens (some needing escapes), many files each.
        gen = Generator(int(os.environ.get("AKSSPARK_PROPS_SEED", "20240611")))
        rdir = os.path.join(self.tmp, "random")
        os.mkdir(rdir)
        batches = {}
        expected = {}
        for i in range(N_RANDOM):
            if i % 100 == 0:
                token = gen.token()
            pieces = gen.file()
            orig, out = Generator.expected(pieces, store_escape(token))
            src = os.path.join(rdir, "%04d.properties" % i)
            with open(src, "wb") as f:
                f.write(orig)
            batches.setdefault(token, []).append((src, src + ".edited"))
            expected[src] = (orig, out, token)
        for token, group in batches.items():
            self.props_edit(token, group)

        n_appended = n_with_token = 0
        for src, (orig, out, token) in expected.items():
            with open(src + ".edited", "rb") as f:
                got = f.read()
            if out is not None:
                n_with_token += 1
                self.assertEqual(got, out, "%s: bytes outside the token value changed" % src)
            else:
                n_appended += 1
                eol = first_line_end(orig)
                line = KEY.encode() + b" " + store_escape(token) + eol
                self.assertTrue(got.startswith(orig) and got.endswith(line), "%s: not an append" % src)
                self.assertIn(got[len(orig):-len(line)], [b"", eol, eol + eol], "%s: odd separator" % src)

        # Every file, table and random, originals and edits: one JVM.
        files = [p for pair in pairs for p in pair]
        for group in batches.values():
            files += [p for pair in group for p in pair]
        results = self.java_load(files)
        for (src, dst), n in zip(pairs, table):
            self.check_pair("table " + n, results[src], results[dst], table_token)
        n_loaded_orig = 0
        for token, group in batches.items():
            for src, dst in group:
                self.assertTrue(results[src]["ok"], "%s: generated file does not load" % src)
                n_loaded_orig += 1
                self.check_pair(src, results[src], results[dst], token)

        sys.stderr.write("props_java: %d table cases, %d random files (%d with token lines, %d appended), "
                         "%d files loaded through Java in one run\n"
                         % (len(table), N_RANDOM, n_with_token, n_appended, len(files)))


if __name__ == "__main__":
    unittest.main()
