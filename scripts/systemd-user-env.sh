#!/bin/bash
# Starts (and stops) a real `systemd --user` manager for a test user in a container whose PID 1
# is not systemd, as tests/integration/test_systemd.py and people trying the units need it.
#
#   systemd-user-env.sh up USER        create USER if missing, start its manager (idempotent);
#                                      prints "UID XDG_RUNTIME_DIR MANAGER_LOG"
#   systemd-user-env.sh run USER CMD…  run CMD as USER with XDG_RUNTIME_DIR set (systemctl --user)
#   systemd-user-env.sh down USER      stop the manager, kill what is left in its cgroup,
#                                      remove /run/user/UID (idempotent; keeps the user)
#   systemd-user-env.sh purge USER     down, then remove the user and its home
#
# Must run as root. There is no journald here: a drop-in for every service of the manager
# ($XDG_RUNTIME_DIR/systemd/user/service.d/) sends their output to MANAGER_LOG,
# /run/aksspark-user-env/USER.log. The manager's own messages are lost (it closes its stderr
# when it is not on a terminal); ask `systemctl --user status/show` instead.
set -euo pipefail

STATE=/run/aksspark-user-env
SYSTEMD=${SYSTEMD_BINARY:-/lib/systemd/systemd}
TIMEOUT=${SYSTEMD_USER_ENV_TIMEOUT:-20}

die() { echo "systemd-user-env: $*" >&2; exit 1; }

usage() {
        sed -n '4,13p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 64
}

# The cgroup hierarchies a user manager is placed in: cgroup v2 ("unified", possibly mounted
# at /sys/fs/cgroup itself) and the named v1 "systemd" hierarchy of a hybrid layout.
cgroup_dirs() {
        local uid=$1
        local sub="user.slice/user-$uid.slice/user@$uid.service"
        if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
                echo "/sys/fs/cgroup/$sub"
                return
        fi
        local h
        for h in unified systemd; do
                [ -e "/sys/fs/cgroup/$h/cgroup.procs" ] && echo "/sys/fs/cgroup/$h/$sub"
        done
        return 0
}

manager_pid() {
        local user=$1 pid
        [ -r "$STATE/$user.pid" ] || return 1
        pid=$(cat "$STATE/$user.pid")
        [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
        # Guard against a recycled pid: it is runuser, the manager's parent.
        [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = runuser ] || return 1
        echo "$pid"
}

wait_for() {
        local what=$1 deadline=$((SECONDS + TIMEOUT))
        shift
        until "$@"; do
                [ $SECONDS -lt $deadline ] || return 1
                sleep 0.05
        done
        return 0
}

cmd_up() {
        local user=$1 uid rt log dir pid
        [ "$(id -u)" = 0 ] || die "must run as root"
        if ! id -u "$user" >/dev/null 2>&1; then
                useradd -m -s /bin/bash "$user"
        fi
        uid=$(id -u "$user")
        rt=/run/user/$uid
        log=$STATE/$user.log
        # What PID 1 systemd would have made: /run/systemd/system makes sd_booted() true, and
        # /run/systemd/unit-root is where a user manager assembles a sandboxed unit's mount
        # namespace (ProtectSystem= etc. with PrivateUsers=); it cannot create it itself.
        mkdir -p "$STATE" /run/systemd/system
        install -d -m 0755 /run/systemd/unit-root
        install -d -m 0700 -o "$user" -g "$(id -g "$user")" "$rt"
        install -d -m 0755 -o "$user" -g "$(id -g "$user")" \
                "$rt/systemd" "$rt/systemd/user" "$rt/systemd/user/service.d"
        printf '[Service]\nStandardOutput=append:%s\nStandardError=inherit\n' "$log" \
                >"$rt/systemd/user/service.d/50-systemd-user-env.conf"
        chown "$user" "$rt/systemd/user/service.d/50-systemd-user-env.conf"

        if pid=$(manager_pid "$user") && [ -S "$rt/systemd/private" ]; then
                echo "$uid $rt $log"
                return 0
        fi

        for dir in $(cgroup_dirs "$uid"); do
                mkdir -p "$dir"
                chown "$user" "$dir"
                [ -e "$dir/cgroup.procs" ] && chown "$user" "$dir/cgroup.procs"
                # cgroup v2 also needs these writable to let the manager build its tree.
                for f in cgroup.subtree_control cgroup.threads; do
                        [ -e "$dir/$f" ] && chown "$user" "$dir/$f"
                done
        done

        : >"$log"
        chown "$user" "$log"
        chmod 0644 "$log"
        (
                for dir in $(cgroup_dirs "$uid"); do
                        echo "$BASHPID" >"$dir/cgroup.procs"
                done
                exec setsid runuser -u "$user" -- env -i \
                        PATH=/usr/local/bin:/usr/bin:/bin \
                        XDG_RUNTIME_DIR="$rt" \
                        "$SYSTEMD" --user </dev/null >>"$log" 2>&1
        ) &
        echo $! >"$STATE/$user.pid"

        if ! wait_for "manager socket" test -S "$rt/systemd/private"; then
                cat "$log" >&2
                die "the user manager of $user did not come up within ${TIMEOUT}s (log: $log)"
        fi
        # The private socket appears before the manager finished its start-up transaction.
        wait_for "manager running" is_running "$user" || true
        echo "$uid $rt $log"
}

is_running() {
        local s
        s=$(cmd_run "$1" systemctl --user is-system-running 2>/dev/null) || true
        [ "$s" = running ] || [ "$s" = degraded ]
}

cmd_run() {
        local user=$1 uid
        shift
        uid=$(id -u "$user")
        runuser -u "$user" -- env XDG_RUNTIME_DIR="/run/user/$uid" \
                DBUS_SESSION_BUS_ADDRESS= "$@"
}

cgroup_empty() {
        local dir
        for dir in "$@"; do
                [ -e "$dir" ] || continue
                [ -z "$(find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null)" ] || return 1
        done
        return 0
}

cmd_down() {
        local user=$1 uid pid dirs dir
        [ "$(id -u)" = 0 ] || die "must run as root"
        id -u "$user" >/dev/null 2>&1 || return 0
        uid=$(id -u "$user")
        dirs=$(cgroup_dirs "$uid")

        if pid=$(manager_pid "$user"); then
                # An orderly exit stops every unit first; runuser passes a SIGTERM on as well.
                cmd_run "$user" systemctl --user exit >/dev/null 2>&1 ||
                        kill -TERM "$pid" 2>/dev/null || true
                wait_for "manager exit" sh -c "! kill -0 $pid 2>/dev/null" ||
                        kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$STATE/$user.pid"

        # Whatever the manager left behind (it should be nothing).
        for dir in $dirs; do
                [ -e "$dir" ] || continue
                find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null |
                        xargs -r kill -KILL 2>/dev/null || true
        done
        # shellcheck disable=SC2086
        wait_for "cgroup empty" cgroup_empty $dirs || true
        for dir in $dirs; do
                [ -e "$dir" ] && find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null
                rmdir "$(dirname "$dir")" 2>/dev/null || true
        done
        if [ -d "/run/user/$uid" ]; then
                umount -R "/run/user/$uid" 2>/dev/null || true
                rm -rf "/run/user/$uid"
        fi
}

cmd_purge() {
        local user=$1
        cmd_down "$user"
        if id -u "$user" >/dev/null 2>&1; then
                userdel -r "$user" 2>/dev/null || userdel "$user"
        fi
        rm -f "$STATE/$user.log"
}

[ $# -ge 2 ] || usage
verb=$1
user=$2
shift 2
case $verb in
up) cmd_up "$user" ;;
down) cmd_down "$user" ;;
purge) cmd_purge "$user" ;;
run)
        [ $# -ge 1 ] || usage
        cmd_run "$user" "$@"
        ;;
*) usage ;;
esac
