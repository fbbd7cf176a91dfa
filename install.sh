#!/bin/bash
# Install pivox as a systemd service on Raspberry Pi OS / Debian (run as root):
#   sudo ./install.sh                      apt packages, venv, user, config, unit; enable it
#   sudo ./install.sh --wheelhouse DIR     install pivox and its deps from DIR, offline
#   sudo ./install.sh --extras LIST        choose pivox's extras (wake,aec) instead of by arch
#   sudo ./install.sh --uninstall          remove everything but /etc/pivox
# Safe to run again: an existing /etc/pivox/pivox.toml or API key is never overwritten.
# Decides by the userland's architecture (dpkg), never the kernel's (see userland_plan).
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="/opt/pivox/venv"
CONFIG_DIR="/etc/pivox"
UNIT="/etc/systemd/system/pivox.service"
USER_NAME="pivox"
STATE_DIR="/var/lib/pivox"
# python3-pyaudio and python3-systemd come prebuilt from apt (no compiler needed on the Pi);
# the venv sees them through --system-site-packages. procps: /bin/kill for ExecReload=.
APT_PACKAGES=(python3 python3-venv libportaudio2 python3-pyaudio python3-systemd procps)
# The GPIO module: rpi-lgpio on current Raspberry Pi OS (needed on a Pi 5), else RPi.GPIO.
GPIO_PACKAGES=(python3-rpi-lgpio python3-rpi.gpio)

# Set by userland_plan: pivox's extras, apt packages for what has no wheel, and the packages
# pip may build from source where no wheel fits (everything else must be a wheel).
EXTRAS=""
ARCH_APT=()
SOURCE_BUILDS=()

say() { echo "pivox install: $*"; }
die() { echo "pivox install: error: $*" >&2; exit 1; }

usage() {
    sed -n '2,8s/^# \{0,1\}//p' "$0"
    exit "${1:-0}"
}

systemd_running() { [ -d /run/systemd/system ]; }

userland_arch() {
    # The userland's architecture: a 32-bit Raspberry Pi OS on a Pi 4/5 runs a 64-bit kernel,
    # so `uname -m` (and Python's platform.machine()) say aarch64 there; dpkg says armhf.
    if command -v dpkg >/dev/null; then
        dpkg --print-architecture
    else
        python3 -c 'import struct; print("32-bit" if struct.calcsize("P") == 4 else "64-bit")'
    fi
}

userland_plan() {
    local chosen="$1" arch
    arch="$(userland_arch)"
    case "$arch" in
        arm64|amd64)
            # every dependency has a wheel on PyPI
            EXTRAS="wake,aec" ;;
        armhf)
            # PyPI has no armv7 wheel of numpy, soxr, pymicro-features or pywebrtc-audio:
            # numpy from apt, soxr and the wake word's pymicro-features built here (minutes,
            # see README); pywebrtc-audio (WebRTC AEC3) takes far longer: only if asked for
            EXTRAS="wake"
            ARCH_APT=(python3-numpy build-essential python3-dev) ;;
        *)
            # not a tested architecture: let pip build what it must
            EXTRAS=""
            SOURCE_BUILDS=(any) ;;
    esac
    [ "$chosen" = "-" ] || EXTRAS="$chosen"
    if [ "$arch" = armhf ]; then
        SOURCE_BUILDS=(soxr)
        [[ ",$EXTRAS," == *,wake,* ]] && SOURCE_BUILDS+=(pymicro-features)
        [[ ",$EXTRAS," == *,aec,* ]] && SOURCE_BUILDS+=(pywebrtc-audio)
    fi
    say "userland $arch: extras [${EXTRAS:-none}], apt ${ARCH_APT[*]:-nothing extra}," \
        "source builds: ${SOURCE_BUILDS[*]:-none}"
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }

apt_packages() {
    local wanted=("${APT_PACKAGES[@]}" "${ARCH_APT[@]}") missing=() pkg
    if ! installed python3-rpi-lgpio && ! installed python3-rpi.gpio; then
        for pkg in "${GPIO_PACKAGES[@]}"; do
            if apt-cache show "$pkg" >/dev/null 2>&1; then
                wanted+=("$pkg")
                break
            fi
        done
    fi
    for pkg in "${wanted[@]}"; do
        installed "$pkg" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        say "apt packages present"
        return
    fi
    say "apt-get install ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

user_and_groups() {
    getent group audio >/dev/null || groupadd --system audio
    getent group gpio >/dev/null || groupadd --system gpio
    if ! getent passwd "$USER_NAME" >/dev/null; then
        say "creating user $USER_NAME"
        useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
            --shell /usr/sbin/nologin --comment "pivox smart speaker" "$USER_NAME"
    fi
    usermod --append --groups audio,gpio "$USER_NAME"
}

venv() {
    local wheelhouse="$1" extras="" formats=(--only-binary=:all:)
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating $VENV"
        mkdir -p "$(dirname "$VENV")"
        python3 -m venv --system-site-packages "$VENV"
    fi
    [ -n "$EXTRAS" ] && extras="[$EXTRAS]"
    if [ -n "$wheelhouse" ]; then
        say "installing pivox$extras from $wheelhouse"
        "$VENV/bin/pip" install -q --no-index --find-links "$wheelhouse" --upgrade \
            "pivox$extras"
        return
    fi
    if [ "${SOURCE_BUILDS[*]}" = any ]; then
        formats=()
    elif [ ${#SOURCE_BUILDS[@]} -gt 0 ]; then
        # a wheel where an index has one (piwheels on Raspberry Pi OS), else built here
        say "installing ${SOURCE_BUILDS[*]} (a wheel if an index has one, else a source build)"
        "$VENV/bin/pip" install -q --prefer-binary "${SOURCE_BUILDS[@]}"
    fi
    # Wheels only from here on (pivox itself is a local tree, which pip builds either way):
    # a source build nobody planned fails here instead of taking an hour.
    say "installing pivox$extras from $SRC"
    "$VENV/bin/pip" install -q "${formats[@]}" --upgrade "$SRC$extras"
}

config() {
    install -d -m 0755 "$CONFIG_DIR"
    if [ -e "$CONFIG_DIR/pivox.toml" ]; then
        say "keeping $CONFIG_DIR/pivox.toml"
    else
        install -m 0644 "$SRC/config/pivox.toml" "$CONFIG_DIR/pivox.toml"
        say "wrote $CONFIG_DIR/pivox.toml"
    fi
}

unit() {
    install -m 0644 "$SRC/systemd/pivox.service" "$UNIT"
    if ! command -v systemctl >/dev/null; then
        say "no systemctl here (a chroot?): installed $UNIT, not enabled"
        return
    fi
    if systemd_running; then
        systemctl daemon-reload
    fi
    systemctl enable pivox.service
    if systemd_running; then
        # an upgrade takes effect at once; a stopped service stays stopped
        systemctl try-restart pivox.service
    fi
}

install_all() {
    local wheelhouse="$1"
    userland_plan "$EXTRAS_CHOSEN"
    apt_packages
    user_and_groups
    venv "$wheelhouse"
    config
    unit
    say "done. Put the API key in $CONFIG_DIR/api_key (sudo install -m 600 /dev/stdin" \
        "$CONFIG_DIR/api_key), then: sudo systemctl restart pivox; journalctl -fu pivox"
}

uninstall_all() {
    if [ -e "$UNIT" ]; then
        if systemd_running; then
            systemctl disable --now pivox.service || true
        else
            systemctl disable pivox.service || true
        fi
        rm -f "$UNIT"
        if systemd_running; then
            systemctl daemon-reload
        fi
    fi
    rm -rf "$(dirname "$VENV")" "$STATE_DIR"
    if getent passwd "$USER_NAME" >/dev/null; then
        userdel "$USER_NAME"
    fi
    if getent group "$USER_NAME" >/dev/null; then
        groupdel "$USER_NAME"
    fi
    say "removed; $CONFIG_DIR is kept"
}

main() {
    local action=install wheelhouse=""
    EXTRAS_CHOSEN="-"
    while [ $# -gt 0 ]; do
        case "$1" in
            --uninstall) action=uninstall ;;
            --wheelhouse) [ $# -ge 2 ] || usage 2; wheelhouse="$(cd "$2" && pwd)"; shift ;;
            --extras) [ $# -ge 2 ] || usage 2; EXTRAS_CHOSEN="$2"; shift ;;
            -h|--help) usage 0 ;;
            *) echo "unknown option: $1" >&2; usage 2 ;;
        esac
        shift
    done
    [ "$(id -u)" -eq 0 ] || die "run as root (sudo $0)"
    if [ "$action" = uninstall ]; then
        uninstall_all
    else
        install_all "$wheelhouse"
    fi
}

main "$@"
