#!/usr/bin/env bash
# Set up .venv for this checkout: create it (Python >= 3.11) when missing or broken, and
# (re)install the requirements when they changed since the last install.
#
#   scripts/bootstrap.sh [run|dev]        run: requirements.txt (default)
#   source scripts/bootstrap.sh [run|dev] dev: requirements-dev.txt (tests; includes run)
#
# Idempotent: a second call with unchanged requirements only hashes two files (and the
# compiled modules' sources: scripts/build_native.py).
# Env: QMS_PYTHON=/path/to/python3.x picks the interpreter that creates the venv.

qms_bootstrap() {
    local mode="${1:-run}" root req
    case "$mode" in
        run) req="requirements.txt" ;;
        dev) req="requirements-dev.txt" ;;
        *) echo "bootstrap: unknown mode '$mode' (run|dev)" >&2; return 2 ;;
    esac
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)" || return 1
    local venv="$root/.venv"

    # One bootstrap at a time per checkout (./run and ./test started together).
    if command -v flock >/dev/null 2>&1; then
        local lock="${TMPDIR:-/tmp}/qms-bootstrap-$(id -u)-$(printf '%s' "$root" | cksum | cut -d' ' -f1).lock"
        { exec {QMS_BOOTSTRAP_FD}>"$lock"; } 2>/dev/null && flock "$QMS_BOOTSTRAP_FD"
    fi
    _qms_bootstrap_locked "$mode" "$root" "$venv" "$req"
    local rc=$?
    # The aggregation path compiled for the source as it is (data/native.py): only hashes
    # when up to date; without a compiler it says so and the source runs.
    if ((rc == 0)) && [[ "${QMS_NATIVE:-1}" != 0 ]]; then
        "$venv/bin/python" "$root/scripts/build_native.py" || rc=$?
    fi
    if [[ -n "${QMS_BOOTSTRAP_FD:-}" ]]; then
        exec {QMS_BOOTSTRAP_FD}>&-
        unset QMS_BOOTSTRAP_FD
    fi
    return $rc
}

_qms_python_ok() {  # $1 = interpreter; true when it runs and is >= 3.11
    "$1" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1
}

_qms_hash() {  # hash of the given files' contents (missing files hash as empty)
    local f
    for f in "$@"; do printf '== %s\n' "$f"; cat "$f" 2>/dev/null; done | sha256sum | cut -d' ' -f1
}

_qms_bootstrap_locked() {
    local mode="$1" root="$2" venv="$3" req="$4" py="" cand

    if [[ -e "$venv" ]] && ! _qms_python_ok "$venv/bin/python"; then
        # e.g. its base Python was uninstalled or upgraded away: start afresh, if it is ours to remove.
        if [[ -f "$venv/pyvenv.cfg" && -w "$venv" && -w "$venv/bin" ]]; then
            echo "bootstrap: $venv does not run a Python >= 3.11 any more; recreating it" >&2
            rm -rf -- "$venv"
        else
            echo "bootstrap: $venv has no working Python >= 3.11 and is not a venv this user can replace;" >&2
            echo "           remove it (rm -rf .venv) and run again." >&2
            return 1
        fi
    fi
    if [[ ! -x "$venv/bin/python" ]]; then
        for cand in "${QMS_PYTHON:-}" python3.11 python3.12 python3.13 python3.14 python3; do
            [[ -n "$cand" ]] || continue
            if command -v "$cand" >/dev/null 2>&1 && _qms_python_ok "$cand"; then py="$cand"; break; fi
        done
        if [[ -z "$py" ]]; then
            echo "bootstrap: Python >= 3.11 with the venv module is needed (e.g. apt-get install python3 python3-venv," >&2
            echo "           or pyenv install 3.11); set QMS_PYTHON=/path/to/python3.11 to choose one." >&2
            return 1
        fi
        echo "bootstrap: creating .venv with $("$py" -c 'import sys; print(sys.executable, sys.version.split()[0])')" >&2
        "$py" -m venv "$venv" || { echo "bootstrap: '$py -m venv' failed" >&2; rm -rf "$venv"; return 1; }
    fi

    # Stamps: the hash of the requirement files of each mode as last installed.
    local run_hash dev_hash want
    run_hash="$(_qms_hash "$root/requirements.txt")"
    dev_hash="$(_qms_hash "$root/requirements-dev.txt" "$root/requirements.txt")"
    want="$run_hash"; [[ "$mode" == dev ]] && want="$dev_hash"
    # dev is a superset of run: an up-to-date dev install also satisfies run.
    if [[ "$(cat "$venv/.qms-stamp-$mode" 2>/dev/null)" == "$want" ]] \
        || [[ "$mode" == run && "$(cat "$venv/.qms-stamp-dev" 2>/dev/null)" == "$dev_hash" ]]; then
        return 0
    fi

    echo "bootstrap: installing $req into .venv (first time or requirements changed) ..." >&2
    local log="$venv/.qms-pip.log" start=$SECONDS
    if ! PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
        "$venv/bin/python" -m pip install --quiet --progress-bar off -r "$root/$req" >"$log" 2>&1; then
        cat "$log" >&2
        echo "bootstrap: pip install -r $req failed (log above, also in $log)" >&2
        rm -f "$venv/.qms-stamp-run" "$venv/.qms-stamp-dev"
        return 1
    fi
    # Show warnings/errors pip printed even on success, but not the usual noise.
    grep -iE '^(error|warning)' "$log" | grep -viE 'pip version|running pip as the .root. user|root-user-action|is neither a file nor a directory' >&2 || true
    printf '%s\n' "$want" >"$venv/.qms-stamp-$mode"
    [[ "$mode" == dev ]] && printf '%s\n' "$run_hash" >"$venv/.qms-stamp-run"
    echo "bootstrap: done in $((SECONDS - start)) s" >&2
    return 0
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    qms_bootstrap "$@"
    exit $?
else
    qms_bootstrap "$@"
fi
