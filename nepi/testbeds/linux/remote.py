"""What runs on the hosts: fixed bash scripts that take every value (paths, guids, the
user's command text) as positional parameters, and the one quoted command line that runs
each of them (``shlex.quote`` on every word, nothing else spliced in).

Layout of an experiment on a host (the SSH user's home)::

    ~/nepi-<token>/              one per experiment (0700)
        app-<guid>/              one per Application / Dependency
            <sources>            copied from the controller
            stdin                the application's stdin text (if any)
            buildlog             output of build and install
            stdout, stderr       the command's output
            pid                  "PID STARTTIME" of the command's process group leader
            exitcode             the command's exit status, once it ended

Applications run detached (setsid: their own session and process group, stdio on
files), so they survive the SSH connection. Every process of an application carries
NEPI_APP=<token>-<guid> in its environment: stop and cleanup signal a recorded process
group only while its leader is the recorded process (pid + start time), and otherwise
only processes carrying this tag; cleanup also kills whatever still carries the
experiment's token in its tag (an application's daemonised children). Never anything
found by name.

The login shell on the hosts must be a POSIX shell (sh, bash, dash, zsh...): the command
line is single-quoted for it. The scripts themselves run in bash.
"""

import shlex
from typing import Iterable

# Files of an application folder that sources may not overwrite.
RESERVED = ("stdin", "stdout", "stderr", "buildlog", "pid", "pid.tmp", "exitcode",
            "exitcode.tmp")
STOP_GRACE = 3          # seconds between SIGTERM and SIGKILL

# BUILD's exit status when the install text (not the build) failed
INSTALL_FAILED = 91

_COMMON = r'''
umask 022
fields() {  # PID: the fields of /proc/PID/stat after "pid (comm)", in array f
    local stat
    { read -r stat < "/proc/$1/stat"; } 2>/dev/null || return 1
    read -r -a f <<< "${stat##*) }"
}
alive() {   # PID STARTTIME: is that exact process (not a reused pid) running?
    fields "$1" && [ "${f[0]}" != Z ] && [ "${f[19]}" = "$2" ]
}
members() { # PGID TAG: live processes of that group carrying NEPI_APP=TAG
    local e p
    for e in $(grep -lzxF -- "NEPI_APP=$2" /proc/[0-9]*/environ 2>/dev/null); do
        p=${e#/proc/}
        p=${p%/environ}
        fields "$p" && [ "${f[2]}" = "$1" ] && [ "${f[0]}" != Z ] && echo "$p"
    done
}
signal_app() {  # DIR TAG SIGNAL: signal what the application left; false if nothing
    local pid start rest
    [ -s "$1/pid" ] || return 1
    read -r pid start rest < "$1/pid" || return 1
    case "$pid" in ''|*[!0-9]*) return 1 ;; esac
    if alive "$pid" "$start"; then
        kill -s "$3" -- "-$pid" 2>/dev/null
        return 0
    fi
    rest=$(members "$pid" "$2")
    [ -n "$rest" ] || return 1
    kill -s "$3" $rest 2>/dev/null
    return 0
}
stop_apps() {   # GRACE DIR TAG [DIR TAG ...]: TERM, wait up to GRACE s, then KILL
    local grace=$1 i n left
    shift
    local a=("$@")
    for ((i = 0; i < ${#a[@]}; i += 2)); do signal_app "${a[i]}" "${a[i+1]}" TERM; done
    for ((n = 0; n < grace * 10; n++)); do
        left=0
        for ((i = 0; i < ${#a[@]}; i += 2)); do
            signal_app "${a[i]}" "${a[i+1]}" 0 && left=1
        done
        [ "$left" = 0 ] && return 0
        sleep 0.1
    done
    for ((i = 0; i < ${#a[@]}; i += 2)); do signal_app "${a[i]}" "${a[i+1]}" KILL; done
    return 0
}
'''

# $1 folder name (nepi-<token>): made (0700) in the login's home; prints home and uid
CONNECT = r'''
umask 077
mkdir -p -- "$HOME/$1" && printf '%s\n%s\n' "$HOME" "$(id -u)"
'''

# $1 folder name: home and uid, only if the experiment's folder is there
REATTACH = r'''
[ -d "$HOME/$1" ] || { echo "no folder $HOME/$1" >&2; exit 96; }
printf '%s\n%s\n' "$HOME" "$(id -u)"
'''

# $1 folder name, $2... the command: run in the experiment's folder (nepid exec / shell)
EXEC = r'''
cd -- "$HOME/$1" 2>/dev/null || cd
shift
exec "$@"
'''

# home and uid (to clean up a host whose home was never recorded)
HELLO = r'''printf '%s\n%s\n' "$HOME" "$(id -u)"'''

# $@ Debian packages: those not installed yet are installed with apt-get, as root
DEPENDS = r'''
missing=()
for p in "$@"; do dpkg -s "$p" > /dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
command -v apt-get > /dev/null 2>&1 || {
    echo "no apt-get to install: ${missing[*]}" >&2; exit 92; }
sudo=
[ "$(id -u)" = 0 ] || sudo="sudo -n"
err=$(mktemp) || exit 1
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" \
    < /dev/null > /dev/null 2> "$err" || {
    grep -v '^W:' "$err" | tail -n 5 >&2; rm -f "$err"
    echo "missing: ${missing[*]}" >&2; exit 93; }
rm -f "$err"
'''

# $1 element folder: made, then the tar stream on stdin extracted into it
STAGE = r'''
mkdir -p -- "$1" && tar -x -f - -C "$1" --no-same-owner
'''

# $1 element folder, $2 experiment folder, $3 build text, $4 install text
BUILD = r'''
cd -- "$1" || exit 1
export NEPI_HOME="$2"
: > buildlog
if [ -n "$3" ]; then
    bash -c "$3" < /dev/null >> buildlog 2>&1 || {
        echo "build exited with status $?" >&2; tail -n 20 buildlog >&2; exit 90; }
fi
if [ -n "$4" ]; then
    bash -c "$4" < /dev/null >> buildlog 2>&1 || {
        echo "install exited with status $?" >&2; tail -n 20 buildlog >&2; exit 91; }
fi
exit 0
'''

# Runs as the detached process group leader: records itself, runs $1, records its status.
WRAPPER = r'''
command=$1
read -r stat < "/proc/$$/stat"
read -r -a f <<< "${stat##*) }"
echo "$$ ${f[19]}" > pid.tmp && mv -f pid.tmp pid
bash -c "$command"
echo "$?" > exitcode.tmp && mv -f exitcode.tmp exitcode
'''

# $1 element folder, $2 command, $3 experiment folder, $4 tag, $5 the wrapper
START = r'''
cd -- "$1" || exit 1
rm -f pid exitcode
export NEPI_HOME="$3" NEPI_APP="$4"
input=/dev/null
[ -e stdin ] && input=stdin
setsid bash -c "$5" nepi-app "$2" < "$input" > stdout 2> stderr &
for ((n = 0; n < 200; n++)); do
    [ -s pid ] && exec cat pid
    sleep 0.05
done
echo "the application did not start (no pid file after 10 s)" >&2
exit 94
'''

# $@ element folders: one line each -- "running PID START", "finished STATUS",
# "dead PID START" (gone without a status: killed), "notstarted", "missing"
STATUS = r'''
for d in "$@"; do
    if [ -e "$d/exitcode" ]; then
        echo "finished $(cat "$d/exitcode")"
    elif [ -s "$d/pid" ]; then
        read -r pid start rest < "$d/pid"
        if alive "$pid" "$start"; then echo "running $pid $start"
        else echo "dead $pid $start"; fi
    elif [ -d "$d" ]; then
        echo notstarted
    else
        echo missing
    fi
done
'''

# $1 grace seconds, then pairs: element folder, tag
STOP = r'''
stop_apps "$@"
'''

# $1 experiment folder (.../nepi-<token>), $2 token, $3 grace seconds: stop every
# application recorded in it, kill what still carries the experiment's tag, remove it
CLEANUP = r'''
case "$1" in /*/nepi-"$2"|/nepi-"$2") ;; *) echo "refusing to remove $1" >&2; exit 95 ;; esac
case "$2" in *[!0-9a-z]*|'') echo "bad token $2" >&2; exit 95 ;; esac
pairs=()
for d in "$1"/app-*; do
    [ -d "$d" ] || continue
    pairs+=("$d" "$2-${d##*/app-}")
done
[ ${#pairs[@]} -gt 0 ] && stop_apps "$3" "${pairs[@]}"
for p in $(grep -lzxE -- "NEPI_APP=$2-[0-9]+" /proc/[0-9]*/environ 2>/dev/null); do
    p=${p#/proc/}
    kill -s KILL "${p%/environ}" 2>/dev/null
done
rm -rf -- "$1"
'''

# $1 experiment folder, then paths relative to it: a tar stream of those that exist
FETCH = r'''
cd -- "$1" || exit 96
shift
files=()
for p in "$@"; do [ -f "$p" ] && files+=("$p"); done
[ ${#files[@]} -eq 0 ] && exit 0
exec tar -c -f - -- "${files[@]}"
'''


def command_line(script: str, *args: object, sudo: bool = False) -> str:
    """The remote command running ``script`` with ``args`` as $1..$n (as root with
    ``sudo``), every word quoted for the login shell."""
    words = (["sudo", "-n", "--"] if sudo else []) + \
        ["bash", "-c", _COMMON + script, "nepi"] + [str(a) for a in args]
    return shlex.join(words)


def app_tag(token: str, guid: int) -> str:
    return "%s-%d" % (token, guid)


def stop_args(pairs: Iterable[tuple], grace: int = STOP_GRACE) -> list:
    """STOP's arguments for (folder, tag) pairs."""
    args = [grace]
    for folder, tag in pairs:
        args += [folder, tag]
    return args
