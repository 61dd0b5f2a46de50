# Sourced by scripts/install-peers-*.sh: whether a venv was made from this very requirements
# file. Its content decides, not its time: a fresh clone's files are all newer than any cache.
venv_is_current() { # VENV REQUIREMENTS
        [ -f "$1/.installed" ] && [ "$(cat "$1/.installed")" = "$(sha256sum <"$2" | cut -d' ' -f1)" ]
}

venv_mark_current() { # VENV REQUIREMENTS
        sha256sum <"$2" | cut -d' ' -f1 >"$1/.installed"
}
